#!/usr/bin/env bash
# The demo command from the README: installs system packages if missing, builds the sensor
# and replays the bundled demo capture, printing EVE JSON to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked --quiet
exec target/release/xferwatch -c pcaps/demo.toml -r pcaps/demo.pcap -o - "$@"
