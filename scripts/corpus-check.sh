#!/usr/bin/env bash
# Replays every capture of the shared public corpus through the sensor.
# Pass: no panic, no hang (60 s per file), exit 0 for readable files and exit 2 with a
# message for the corrupt ones (MANIFEST.tsv notes say "reader error:"), and every stdout
# line parses as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/pcaps/corpus}
bin=${XFERWATCH_BIN:-target/release/xferwatch}
if [ ! -d "$corpus" ]; then
  echo "corpus-check: $corpus not found; skipped" >&2
  exit 0
fi
[ -x "$bin" ] || cargo build --release --locked --quiet
manifest="$corpus/MANIFEST.tsv"
fail=0; n=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
while IFS=$'\t' read -r file _category _r _p _c _l _packets _lt _exp notes; do
  [ "$file" = "file" ] && continue
  n=$((n + 1))
  expect=0
  case "$notes" in *"reader error:"*) expect=2 ;; esac
  set +e
  timeout 60 "$bin" -r "$corpus/$file" -o - >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  if grep -q "panicked" "$tmp/err"; then echo "FAIL panic: $file"; fail=1; continue; fi
  if [ $rc -eq 124 ]; then echo "FAIL hang: $file"; fail=1; continue; fi
  if [ $rc -ne $expect ]; then echo "FAIL exit $rc (want $expect): $file: $(tail -n1 "$tmp/err")"; fail=1; continue; fi
  if [ $expect -eq 2 ] && [ ! -s "$tmp/err" ]; then echo "FAIL no message: $file"; fail=1; continue; fi
  if ! python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/out"; then
    echo "FAIL bad JSON: $file"; fail=1; continue
  fi
  if ! grep -q '"event_type":"stats"' "$tmp/out"; then echo "FAIL no final stats record: $file"; fail=1; continue; fi
done <"$manifest"
echo "corpus-check: $n files, $([ $fail -eq 0 ] && echo ok || echo FAILED)"
exit $fail
