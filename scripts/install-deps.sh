#!/usr/bin/env bash
# Installs the system packages xferwatch needs to build and test on Debian/Ubuntu:
# libpcap (headers + library) for capture and BPF, tcpdump for recording test captures.
# Does nothing when they are already present. Needs root or sudo for apt-get.
set -euo pipefail

need=()
if ! { [ -e /usr/include/pcap.h ] || [ -e /usr/include/pcap/pcap.h ]; }; then need+=(libpcap-dev); fi
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

# With --lab, as root: also the namespace lab's servers and clients, so tests/live.rs runs
# its live capture test instead of skipping it (scenarios.sh installs only what is missing).
# The demo does not need them.
if [ "${1:-}" = "--lab" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  "$(dirname "$0")/netns/scenarios.sh" install || echo "install-deps: lab packages not installed; tests/live.rs will skip its lab test" >&2
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root (or sudo) to install: ${need[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
