#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each one in turn for SECONDS.
#
# Usage: scripts/fuzz.sh SECONDS [TARGET...]
#   SECONDS   libFuzzer -max_total_time per target; 0 builds only.
#   TARGET    run only these (default: every target `cargo fuzz list` shows).
# Environment:
#   FUZZ_SANITIZER  address (default) or none. ASan works on stable here through
#                   RUSTC_BOOTSTRAP; `none` runs about twice as many executions per second.
#   FUZZ_RUNS       stop each target after this many executions instead (-runs), with
#                   SECONDS as the time limit on top.
#   FUZZ_ARGS       extra libFuzzer flags (e.g. "-seed=1").
#
# Seeds come from the project's captures and configs (fuzz/seed.sh) into fuzz/corpus/,
# which git ignores; whatever the fuzzer adds there is kept for the next local run.
# Crashes land in fuzz/artifacts/TARGET/. The script runs every target, prints one summary
# line per target (executions, seconds, result), and exits non-zero if any target failed.
#
# Only the stable toolchain is needed: `cargo fuzz build` passes -Z flags, which stable
# rustc accepts with RUSTC_BOOTSTRAP=1. cargo-fuzz is installed from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
secs="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
sanitizer="${FUZZ_SANITIZER:-address}"

# Largest input per target: room for what it parses, small enough to stay fast.
declare -A max_len=(
    [decode]=2048 [capture]=16384 [config]=2048 [probes]=1024
    [ftp]=1024 [smb]=2048 [tftp]=1024
)

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "== fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1

# Debug assertions on: integer overflow in length arithmetic is a finding too.
build_flags=(--sanitizer "$sanitizer" --debug-assertions --target-dir "fuzz/target/$sanitizer")

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== fuzz: building ${#targets[@]} targets (sanitizer $sanitizer)"
start=$SECONDS
mkdir -p "fuzz/target/$sanitizer"
if ! cargo fuzz build "${build_flags[@]}" >"fuzz/target/$sanitizer/build.log" 2>&1; then
    tail -n 60 "fuzz/target/$sanitizer/build.log" >&2
    echo "fuzz: build failed" >&2
    exit 1
fi
echo "== fuzz: built in $((SECONDS - start)) s"
bin_dir="fuzz/target/$sanitizer/x86_64-unknown-linux-gnu/release"
for t in "${targets[@]}"; do
    [ -x "$bin_dir/$t" ] || { echo "fuzz: no binary for target $t" >&2; exit 1; }
done
[ "$secs" -gt 0 ] || exit 0

fuzz/seed.sh fuzz/corpus

failed=0
summary=()
mkdir -p fuzz/artifacts
for t in "${targets[@]}"; do
    len="${max_len[$t]:-4096}"
    log="fuzz/target/$sanitizer/fuzz-$t.log"
    # A huge length field turned into an allocation is an out-of-memory crash: RSS over
    # 2 GiB always, and with ASan's allocator any single allocation over 2 GiB at once.
    args=(
        "-max_total_time=$secs" "-max_len=$len" -rss_limit_mb=2048 -malloc_limit_mb=2048
        -timeout=10 -print_final_stats=1
    )
    [ -n "${FUZZ_RUNS:-}" ] && args+=("-runs=$FUZZ_RUNS")
    # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
    [ -n "${FUZZ_ARGS:-}" ] && args+=($FUZZ_ARGS)
    mkdir -p "fuzz/artifacts/$t"
    echo "== fuzz: $t (max_len $len, ${secs} s)"
    t0=$SECONDS
    # The binary itself rather than `cargo fuzz run`, which would rebuild after any edit
    # of the sources during a long run.
    if "$bin_dir/$t" -artifact_prefix="fuzz/artifacts/$t/" "${args[@]}" "fuzz/corpus/$t" \
        >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log and fuzz/artifacts/$t/)"
        failed=1
        tail -n 40 "$log" >&2
    fi
    execs="$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' |
        awk '{s += $1} END {print s + 0}')"
    summary+=("$(printf '%-8s %12s execs %6s s  %s' "$t" "$execs" "$((SECONDS - t0))" "$result")")
done
echo "== fuzz: summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
