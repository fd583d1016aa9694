#!/usr/bin/env bash
# Bounded live load test (issue 6): tcpreplay pushes a generated capture at top speed through
# a veth pair between two namespaces this script creates; the sensor captures live on the far
# end with 1 and then 2 workers. For each run it reports the packets sent, what libpcap
# received, kernel and interface drops, the sensor's own queue drops, what the workers
# decoded, and the rate, so loss can be placed in the kernel or in the sensor.
#
#   benches/live_load.sh [TARGET_BYTES] [LOOPS] [WORKERS...]
#   e.g. benches/live_load.sh 200000000 2 1 2
#   BUFFER_MIB=2 benches/live_load.sh ...   (a small kernel buffer, to see kernel drops)
#
# Needs root. Installs tcpreplay from Debian if missing. The namespaces (xwload-tx,
# xwload-rx) hold only the veth pair, with no addresses and no routes: nothing reaches the
# host's interfaces. Every process started is killed by PID and the namespaces are deleted on
# exit, also on error or Ctrl-C. The load is bounded: one capture, LOOPS times.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_BYTES=${1:-200000000}
BUFFER_MIB=${BUFFER_MIB:-32}
LOOPS=${2:-2}
shift $(( $# >= 2 ? 2 : $# ))
WORKERS=("$@")
[ ${#WORKERS[@]} -gt 0 ] || WORKERS=(1 2)

[ "$(id -u)" -eq 0 ] || { echo "live_load.sh: must run as root (network namespaces)" >&2; exit 1; }
if ! command -v tcpreplay >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpreplay >/dev/null
fi
scripts/install-deps.sh >/dev/null

TX=xwload-tx RX=xwload-rx
WORK=$(mktemp -d /tmp/xw-live-load.XXXXXX)
SENSOR_PID=""

cleanup() {
  if [ -n "$SENSOR_PID" ] && kill -0 "$SENSOR_PID" 2>/dev/null; then
    kill -TERM "$SENSOR_PID" 2>/dev/null || true
    sleep 2
    kill -KILL "$SENSOR_PID" 2>/dev/null || true
  fi
  for ns in $TX $RX; do
    [ -e "/run/netns/$ns" ] && ip netns del "$ns"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cargo build --release --locked --quiet --bin xferwatch --example pcapgen
BIN=${CARGO_TARGET_DIR:-target}/release/xferwatch
GEN=${CARGO_TARGET_DIR:-target}/release/examples/pcapgen
PCAP=$WORK/load.pcap
"$GEN" bench "$PCAP" --target-bytes "$TARGET_BYTES" --seed 11 >/dev/null
FRAMES=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['packets'])" "$PCAP.truth.json")

for ns in $TX $RX; do
  [ -e "/run/netns/$ns" ] && ip netns del "$ns"
  ip netns add "$ns"
done
ip link add xwl-tx netns $TX mtu 9000 type veth peer name xwl-rx netns $RX mtu 9000
ip -n $TX link set xwl-tx up
ip -n $RX link set xwl-rx up
ip -n $TX link set lo up
ip -n $RX link set lo up

printf '%-8s %10s %10s %10s %10s %10s %10s %10s %10s\n' \
  workers sent received kern_drop if_drop queue_drop decoded pps_sent pps_decoded
for W in "${WORKERS[@]}"; do
  CFG=$WORK/load-$W.toml
  OUT=$WORK/eve-$W.json
  printf '[capture]\nworkers = %s\nbuffer_size_mib = %s\n[output]\nstats_interval = 0\n' "$W" "$BUFFER_MIB" >"$CFG"
  ip netns exec $RX "$BIN" -i xwl-rx -c "$CFG" -o "$OUT" 2>"$WORK/sensor-$W.log" &
  SENSOR_PID=$!
  # The capture is open once the sensor logs that it is listening (or after 5 s at most).
  for _ in $(seq 50); do
    grep -q "Live capture opened" "$WORK/sensor-$W.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5
  START=$(date +%s.%N)
  ip netns exec $TX tcpreplay -i xwl-tx --topspeed -K --loop "$LOOPS" "$PCAP" >"$WORK/tcpreplay-$W.log" 2>&1
  END=$(date +%s.%N)
  sleep 1
  kill -TERM "$SENSOR_PID"
  wait "$SENSOR_PID" || true
  SENSOR_PID=""
  python3 - "$OUT" "$W" "$FRAMES" "$LOOPS" "$START" "$END" "$WORK/tcpreplay-$W.log" <<'EOF'
import json, re, sys
out, w, frames, loops, start, end, log = sys.argv[1:]
stats = [json.loads(l) for l in open(out) if '"event_type":"stats"' in l][-1]["stats"]
cap = stats["capture"]
sent = int(frames) * int(loops)
m = re.search(r"Actual: (\d+) packets", open(log).read())
if m:
    sent = int(m.group(1))
secs = max(float(end) - float(start), 1e-9)
decoded = stats["decoder"]["pkts"]
print(f"{w:<8} {sent:>10} {cap['pcap']['received']:>10} {cap['pcap']['kernel_dropped']:>10} "
      f"{cap['pcap']['interface_dropped']:>10} {cap['queue_dropped']:>10} {decoded:>10} "
      f"{sent / secs:>10.0f} {decoded / secs:>10.0f}")
# Accounting: every frame libpcap handed over was either decoded by a worker or dropped,
# counted, at the worker queue.
if cap["frames"] != decoded + cap["queue_dropped"]:
    sys.exit(f"accounting broken: frames {cap['frames']} != decoded {decoded} + queue_dropped {cap['queue_dropped']}")
EOF
done
echo "capture: $PCAP ($FRAMES frames) x $LOOPS loops; tcpreplay --topspeed over veth (MTU 9000)"
