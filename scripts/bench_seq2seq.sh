#!/usr/bin/env bash
# Seq2seq generation throughput, one run: triage vs PyTorch transformers `generate` vs CTranslate2 on
# the same random weights of the real sizes (Marian = opus-mt-zh-en's config, T5 = t5-small's),
# greedy and beam 4, batch 1 and 16, 32 source tokens, output forced to NEW_TOKENS tokens per row in
# every system, same thread count; prints a markdown table of generated tokens/s and the ratios.
# Speed does not depend on the weights' values, so random weights of the real sizes are honest.
#   scripts/bench_seq2seq.sh [threads]
# Env: NEW_TOKENS (default 64), CASES (default greedy-b1,greedy-b16,beam4-b1,beam4-b16),
#      MODELS (default "marian t5"), MIN_SECONDS (default 2), MIN_ITERS (default 1),
#      ROUNDS (default 2: every system runs once per round, interleaved; the report keeps each
#      system's best round per case), BENCH_VENV (default ~/.cache/triage/bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
venv="${BENCH_VENV:-$home/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "bench: creating the baseline venv in $venv (torch, transformers, ctranslate2; ~6 GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.15.0 sentence-transformers==6.2.0 transformers==5.23.0 \
    onnxruntime==1.31.1 onnx ctranslate2 sentencepiece
fi
"$venv/bin/python" -c 'import ctranslate2' 2>/dev/null || "$venv/bin/pip" install -q ctranslate2
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$venv/bin/python" scripts/bench_seq2seq.py make "$out"
cargo bench --locked --bench seq2seq --no-run
common=(--new-tokens "${NEW_TOKENS:-64}" --cases "${CASES:-greedy-b1,greedy-b16,beam4-b1,beam4-b16}"
  --min-seconds "${MIN_SECONDS:-2}" --min-iters "${MIN_ITERS:-1}")
rounds="${ROUNDS:-2}"
systems=(triage pytorch ctranslate2)
for round in $(seq 1 "$rounds"); do
  for model in ${MODELS:-marian t5}; do
    args=(--model-dir "$out/$model" --inputs "$out/inputs-$model.json" "${common[@]}")
    for sys in "${systems[@]}"; do
      echo "bench: round $round/$rounds: $sys ($model, $threads threads)" >&2
      case "$sys" in
        triage) RAYON_NUM_THREADS=$threads cargo bench --locked --bench seq2seq -- "${args[@]}" ;;
        pytorch) "$venv/bin/python" scripts/bench_seq2seq.py torch --threads "$threads" "${args[@]}" ;;
        ctranslate2) "$venv/bin/python" scripts/bench_seq2seq.py ct2 --threads "$threads" "${args[@]}" ;;
      esac >> "$out/$sys.$round.jsonl"
    done
  done
done
joined() { local s="$1" r p=""; for r in $(seq 1 "$rounds"); do p="${p:+$p+}$out/$s.$r.jsonl"; done; echo "$p"; }
echo "threads: $threads, rounds: $rounds (best per case), new tokens: ${NEW_TOKENS:-64}, cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
python3 scripts/bench_seq2seq_report.py "$(joined triage)" "$(joined pytorch)" "$(joined ctranslate2)"
