#!/usr/bin/env bash
# The test command from the README: installs system packages if missing, then runs every
# test (unit, property, integration, example) and prints one closing line with the totals.
# Works on a fresh clone without ../shared (the corpus tests then say they skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --lab
# tests/detection.rs runs the capture generator binary to make its large captures;
# `--all-targets` builds examples as test harnesses, so build the binaries first.
cargo build --locked --examples
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --all-targets 2>&1 | tee "$log"
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
