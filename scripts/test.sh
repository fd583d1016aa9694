#!/usr/bin/env bash
# The test command from the README: installs system packages if missing, then runs every
# test (unit, property, integration, doc). Works on a fresh clone without ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --locked --all-targets
cargo test --locked --doc
