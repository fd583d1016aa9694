#!/usr/bin/env bash
# Rebuilds every committed capture under pcaps/ (and its .truth.json) with the project's
# generator, examples/pcapgen. Output is byte-for-byte deterministic, so after a generator
# change `git diff --stat pcaps/` shows exactly which captures changed.
#
#   pcaps/regenerate.sh           rewrite pcaps/*.pcap and pcaps/*.pcap.truth.json
#   pcaps/regenerate.sh --check   regenerate into a temporary directory and compare;
#                                 exit 1 if any committed file differs
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=(
  demo
  ftp-passive-upload ftp-passive-download ftp-active-upload ftp-active-download
  ftp-epsv-upload ftp-eprt-ipv6 ftps-explicit ftps-implicit
  tftp-get tftp-put tftp-blksize tftp-error
  smb2-put smb2-get smb3-encrypted smb1-negotiate
  mismatch
)

check=0
if [[ "${1:-}" == "--check" ]]; then
  check=1
fi

cargo build --release --quiet --example pcapgen
status=0
for s in "${scenarios[@]}"; do
  if (( check )); then
    tmp=$(mktemp -d)
    # Same relative path as the committed run, so the truth file's "command" matches.
    mkdir -p "$tmp/pcaps"
    (cd "$tmp" && cargo run --release --quiet --manifest-path "$OLDPWD/Cargo.toml" \
      --example pcapgen -- "$s" "pcaps/$s.pcap" 2>/dev/null)
    for f in "$s.pcap" "$s.pcap.truth.json"; do
      if ! cmp -s "$tmp/pcaps/$f" "pcaps/$f"; then
        echo "differs: pcaps/$f"
        status=1
      fi
    done
    rm -rf "$tmp"
  else
    cargo run --release --quiet --example pcapgen -- "$s" "pcaps/$s.pcap"
  fi
done
exit $status
