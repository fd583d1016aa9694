#!/usr/bin/env bash
# What identification costs, in instructions: replays a generated capture under callgrind
# (one profile per thread) and prints the inclusive instruction count of the engine's three
# identification entry points, which are kept out of line for this (`engine::identify`:
# probes and watchers per payload chunk; `engine::conclude`: end of identification, label
# merge, mismatch verdict and any mismatch alert; `engine::session_kind`: the label check
# that may start a session), against the worker thread's total and all threads' total.
# Instruction counts do not depend on machine load, unlike wall time.
#
# Usage: benches/identify_cost.sh [TARGET_BYTES] [BINARY]
#   TARGET_BYTES  capture size for `pcapgen bench --seed 1` (default 20000000)
#   BINARY        sensor to profile (default: the release build of this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
target_bytes=${1:-20000000}
target_dir=${CARGO_TARGET_DIR:-target}
bin=${2:-$target_dir/release/xferwatch}
data=bench-data
mkdir -p "$data"
cap="$data/bench-$target_bytes.pcap"

command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
if [ $# -lt 2 ]; then
  cargo build --release --locked --quiet --bin xferwatch --example pcapgen
fi
if [ ! -s "$cap" ]; then
  cargo build --release --locked --quiet --example pcapgen
  "$target_dir/release/examples/pcapgen" bench "$cap" --target-bytes "$target_bytes" --seed 1 >&2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/cg" \
  "$bin" -r "$cap" -o /dev/null 2>/dev/null

python3 - "$out" "$bin" "$cap" <<'PY'
import glob, re, subprocess, sys
out, binary, cap = sys.argv[1:4]
ENTRY = ["engine::identify", "engine::conclude", "engine::session_kind"]

def annotate(path):
    return subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout

def count(line):
    return int(line.split()[0].replace(",", ""))

total, worker, worker_total = 0, None, 0
for path in sorted(glob.glob(out + "/cg-*")):
    text = annotate(path)
    t = next(count(l) for l in text.splitlines() if "PROGRAM TOTALS" in l)
    total += t
    if "Engine::process_batch" in text:
        worker, worker_total = text, t
if worker is None:
    sys.exit("no worker thread found in the profile")
ident = 0
for name in ENTRY:
    pat = re.compile(r"^\s*[\d,]+ \(.*xferwatch::%s \[" % re.escape(name))
    n = next((count(l) for l in worker.splitlines() if pat.match(l)), 0)
    if n == 0:
        print(f"warning: {name} not found (inlined, or an older build?)", file=sys.stderr)
    print(f"{name:24} {n:>14,}")
    ident += n
print(f"{'identification':24} {ident:>14,}")
print(f"{'worker thread':24} {worker_total:>14,}")
print(f"{'all threads':24} {total:>14,}")
print(f"share of the worker thread: {100 * ident / worker_total:.2f} %")
print(f"share of all instructions:  {100 * ident / total:.2f} %")
PY
