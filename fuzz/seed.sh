#!/usr/bin/env bash
# Builds the fuzz seed corpora from the project's captures and configs.
# Usage: fuzz/seed.sh [OUT_DIR]   (default fuzz/corpus, which git ignores)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/corpus}"
mkdir -p "$out"
exec python3 "$here/seed.py" "$here/.." "$out"
