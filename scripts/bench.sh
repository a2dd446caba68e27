#!/usr/bin/env bash
# Side-by-side embedding benchmark, one run: triage (candle) vs PyTorch (sentence-transformers /
# transformers, same weights) vs ONNX Runtime, same texts, same thread count; prints ratios.
#   scripts/bench.sh [multilingual-e5-small|all-MiniLM-L6-v2] [threads]
# Env: PRECISIONS (triage runs, default "f32 bf16"; also "candle" = the plain candle path),
#      MIN_SECONDS (default 5), MIN_ITERS (default 3), BENCH_VENV (default ~/.cache/triage/bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-multilingual-e5-small}"
threads="${2:-2}"
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
venv="${BENCH_VENV:-$home/bench-venv}"
dir="$home/models/$model"
prefix=""; [ "$model" = multilingual-e5-small ] && prefix="query: "
scripts/deps.sh
cargo build --release --locked --bin triage
[ -f "$dir/model.safetensors" ] || target/release/triage models setup
if [ ! -x "$venv/bin/python" ]; then
  echo "bench: creating the baseline venv in $venv (torch, sentence-transformers, onnxruntime; ~6 GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.15.0 sentence-transformers==6.2.0 transformers==5.23.0 onnxruntime==1.31.1 onnx
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
python3 scripts/bench_texts.py > "$out/texts.json"
common=(--model-dir "$dir" --texts "$out/texts.json" --min-seconds "${MIN_SECONDS:-5}" --min-iters "${MIN_ITERS:-3}")
ours=()
for precision in ${PRECISIONS:-f32 bf16}; do
  if [ "$precision" = bf16 ] && ! grep -q avx512_bf16 /proc/cpuinfo; then
    echo "bench: this CPU has no AVX-512 BF16, skipping triage bf16" >&2; continue
  fi
  echo "bench: triage ($model, $precision, $threads threads)" >&2
  RAYON_NUM_THREADS=$threads cargo bench --locked --bench embed -- "${common[@]}" --prefix "$prefix" \
    --precision "$precision" > "$out/triage-$precision.jsonl"
  ours+=("$out/triage-$precision.jsonl")
done
echo "bench: pytorch" >&2
"$venv/bin/python" scripts/bench_torch.py --backend torch --threads "$threads" "${common[@]}" --prefix "$prefix" > "$out/pytorch.jsonl"
echo "bench: onnxruntime" >&2
"$venv/bin/python" scripts/bench_torch.py --backend onnx --threads "$threads" "${common[@]}" --prefix "$prefix" > "$out/onnxruntime.jsonl" \
  || echo "bench: onnxruntime skipped" >&2
echo "model: $model, threads: $threads, cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
python3 scripts/bench_report.py "${ours[@]}" -- "$out/pytorch.jsonl" "$out/onnxruntime.jsonl"
