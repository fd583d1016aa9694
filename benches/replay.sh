#!/usr/bin/env bash
# Replay benchmark: builds a large mixed capture with the project's generator (once), then
# times the release sensor (full pipeline, EVE output to a file) against a libpcap-only read
# loop over the same file, in the same run, and prints packets/s, Gbit/s, peak RSS and the
# ratio; then checks that run's records against the generator's truth file (every session,
# linked data channel and planted mismatch found). Usage: benches/replay.sh [TARGET_BYTES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
target_bytes=${1:-1000000000}
runs=${2:-3}
data=bench-data
mkdir -p "$data"
cap="$data/bench-$target_bytes.pcap"
bin=${CARGO_TARGET_DIR:-target}/release

scripts/install-deps.sh
cargo build --release --locked --quiet --bin xferwatch --example pcap_loop --example pcapgen
if [ ! -s "$cap" ]; then
  echo "generating $cap ..." >&2
  "$bin"/examples/pcapgen bench "$cap" --target-bytes "$target_bytes" --seed 1 >&2
fi

python3 - "$cap" "$runs" "$bin" <<'PY'
import json, os, subprocess, sys, time
cap, runs, bin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
size = os.path.getsize(cap)

def measure(cmd):
    """Best wall time over `runs`, mean CPU seconds, max peak RSS (KiB) of this command."""
    best, cpu, rss, out = None, 0.0, 0, b""
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{cmd} failed with status {status}")
        best = dt if best is None else min(best, dt)
        cpu += (ru.ru_utime + ru.ru_stime) / runs
        rss = max(rss, ru.ru_maxrss)
    return best, cpu, rss, out

eve = cap + ".eve.json"
base_t, base_cpu, rss_base, out = measure([f"{bin}/examples/pcap_loop", cap])
packets = int(dict(kv.split("=") for kv in out.decode().split())["packets"])
if os.path.exists(eve):
    os.remove(eve)
sens_t, sens_cpu, rss_all, _ = measure(["sh", "-c", f"rm -f {eve}; exec {bin}/xferwatch -r {cap} -o {eve}"])
flows = 0
with open(eve) as f:
    for line in f:
        if '"event_type":"flow"' in line:
            flows += 1
res = {
    "capture": cap, "bytes": size, "packets": packets, "flows_reported": flows,
    "libpcap_loop": {"seconds": round(base_t, 3), "pkts_per_s": round(packets / base_t), "gbit_per_s": round(size * 8 / base_t / 1e9, 2), "peak_rss_kib": rss_base},
    "xferwatch": {"seconds": round(sens_t, 3), "pkts_per_s": round(packets / sens_t), "gbit_per_s": round(size * 8 / sens_t / 1e9, 2), "peak_rss_kib": rss_all, "cpu_seconds": round(sens_cpu, 3)},
    "ratio_pkts_per_s": round(base_t / sens_t, 3),
}
print(json.dumps(res, indent=2))
PY
# The same run must have found everything the generator planted.
python3 benches/check_truth.py "$cap.eve.json" "$cap.truth.json"
