#!/usr/bin/env bash
# Records real file-transfer software in the namespace lab, one pcap per scenario.
#
#   record.sh [options] [SCENARIO...]        (default: every scenario of scenarios.sh list)
#
# Options:
#   -o DIR               write DIR/SCENARIO.pcap (default: pcaps/real in the repository)
#   --no-pcap            do not run tcpdump (use with --capture-cmd)
#   --capture-cmd CMD    also run CMD in xw-router for each scenario, alongside tcpdump; it
#                        is started before the scenario and stopped with --capture-signal
#                        after it. Placeholders: {iface} (xw-r0), {scenario}, {outdir}.
#                        Example (live sensor, issue 6):
#                          --capture-cmd 'target/release/xferwatch -i {iface} -o {outdir}/{scenario}.eve.json'
#   --capture-signal SIG signal that stops CMD (default INT)
#   --capture-wait SEC   seconds to let CMD open its capture before the scenario (default 2)
#   --keep-lab           leave the lab and servers running at the end (default: tear down)
#
# Steps: install missing packages (scenarios.sh install), lab.sh up, start the servers,
# then per scenario: start the capture(s) on xw-router/xw-r0, run the clients, wait for the
# last packets, stop the capture(s). At exit (normal, error, INT or TERM) every process it
# started is killed by PID, the servers are stopped and the lab is torn down.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab.sh"
SCN="$HERE/scenarios.sh"
readonly CAPTURE_NS=xw-router CAPTURE_IF=xw-r0 SNAPLEN=262144

outdir="$REPO/pcaps/real"
pcap=1
capture_cmd=""
capture_signal=INT
capture_wait=2
keep_lab=0
scenarios=()

die() { echo "record.sh: $*" >&2; exit 1; }
log() { echo "record.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    -o) outdir=$2; shift 2 ;;
    --no-pcap) pcap=0; shift ;;
    --capture-cmd) capture_cmd=$2; shift 2 ;;
    --capture-signal) capture_signal=$2; shift 2 ;;
    --capture-wait) capture_wait=$2; shift 2 ;;
    --keep-lab) keep_lab=1; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) scenarios+=("$1"); shift ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, packet capture)"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# PIDs of the captures running now and the pcap being written; the EXIT trap stops whatever
# is left and removes a capture cut short.
capture_pids=()
partial=""

stop_pid() {
  local pid=$1 sig=$2
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "PID $pid ignored SIG$sig for 5 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${capture_pids[@]}"; do stop_pid "$pid" INT; done
  if [ -n "$partial" ]; then
    rm -f "$partial"
    log "interrupted: removed the partial $partial"
  fi
  if [ "$keep_lab" -eq 0 ]; then
    "$SCN" stop || true
    "$LAB" down || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$SCN" install
if [ ${#scenarios[@]} -eq 0 ]; then mapfile -t scenarios < <("$SCN" list); fi
"$LAB" up >/dev/null
"$SCN" start

record_one() {
  local name=$1 file="$outdir/$1.pcap" err
  capture_pids=()
  if [ "$pcap" -eq 1 ]; then
    err="${XW_RUN:-/tmp/xw-lab}/log/tcpdump-$name.log"
    rm -f "$file"
    partial=$file
    ip netns exec "$CAPTURE_NS" tcpdump -i "$CAPTURE_IF" -nn -s "$SNAPLEN" -U -Z root \
      -w "$file" 2>"$err" &
    capture_pids+=("$!")
    # tcpdump says "listening on" once the capture is active: bounded wait for it.
    for _ in $(seq 50); do grep -q 'listening on' "$err" && break; sleep 0.1; done
    grep -q 'listening on' "$err" || die "tcpdump did not start: $(cat "$err")"
  fi
  if [ -n "$capture_cmd" ]; then
    local cmd=${capture_cmd//\{iface\}/$CAPTURE_IF}
    cmd=${cmd//\{scenario\}/$name}
    cmd=${cmd//\{outdir\}/$outdir}
    (cd "$REPO" && exec ip netns exec "$CAPTURE_NS" sh -c "exec $cmd") &
    capture_pids+=("$!")
    sleep "$capture_wait"
    kill -0 "$!" 2>/dev/null || die "capture command exited before scenario $name: $cmd"
  fi
  sleep 0.3
  "$SCN" run "$name"
  # Let the last ACKs and FINs of every connection reach the capture.
  sleep 1
  local pid
  for pid in "${capture_pids[@]}"; do
    if [ "$pcap" -eq 1 ] && [ "$pid" = "${capture_pids[0]}" ]; then
      stop_pid "$pid" INT
    else
      stop_pid "$pid" "$capture_signal"
    fi
  done
  capture_pids=()
  partial=""
  if [ "$pcap" -eq 1 ]; then
    log "$name: $(stat -c %s "$file") bytes, $(tcpdump -nn -r "$file" 2>/dev/null | wc -l) packets -> $file"
  fi
}

for name in "${scenarios[@]}"; do record_one "$name"; done
log "done"
