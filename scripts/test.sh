#!/usr/bin/env bash
# The test command from the README: installs system packages if missing, then runs every
# test (unit, property, integration, doc). Works on a fresh clone without ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# tests/detection.rs runs the capture generator binary to make its large captures;
# `--all-targets` builds examples as test harnesses, so build the binaries first.
cargo build --locked --examples
cargo test --locked --all-targets
cargo test --locked --doc
