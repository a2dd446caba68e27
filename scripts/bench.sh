#!/usr/bin/env bash
# Side-by-side embedding benchmark, one run: triage (fast CPU encoder) vs PyTorch (sentence-transformers /
# transformers, same weights) vs ONNX Runtime, same texts, same thread count; prints ratios. On CPUs with
# AVX-512 BF16 PyTorch also runs in bf16 (pytorch-bf16: oneDNN, AMX where the CPU has it).
#   scripts/bench.sh [multilingual-e5-small|all-MiniLM-L6-v2] [threads]
# Env: PRECISIONS (triage runs, default "f32 bf16", plus "bf16-avx512" on AMX CPUs = bf16 with
#      TRIAGE_AMX=0, the AVX-512 kernel; also "candle" = the plain candle path), BASELINES (default
#      "pytorch onnxruntime", plus pytorch-bf16 on AVX-512 BF16 CPUs),
#      MIN_SECONDS (default 5), MIN_ITERS (default 3), BENCH_VENV (default ~/.cache/triage/bench-venv),
#      ROUNDS (default 2: every system runs once per round, interleaved; the report keeps each
#      system's best round per case, so a burst of load from elsewhere hits both sides alike).
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
  "$venv/bin/pip" install -q torch==2.15.0 sentence-transformers==6.2.0 transformers==5.23.0 onnxruntime==1.31.1 onnx ctranslate2 sentencepiece
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
python3 scripts/bench_texts.py > "$out/texts.json"
common=(--model-dir "$dir" --texts "$out/texts.json" --min-seconds "${MIN_SECONDS:-5}" --min-iters "${MIN_ITERS:-3}")
rounds="${ROUNDS:-2}"
systems=()
default="f32 bf16"; grep -q amx_bf16 /proc/cpuinfo && default="f32 bf16-avx512 bf16"
for precision in ${PRECISIONS:-$default}; do
  if [[ "$precision" == bf16* ]] && ! grep -q avx512_bf16 /proc/cpuinfo; then
    echo "bench: this CPU has no AVX-512 BF16, skipping triage bf16" >&2; continue
  fi
  systems+=("triage-$precision")
done
bases="pytorch onnxruntime"; grep -q avx512_bf16 /proc/cpuinfo && bases="pytorch pytorch-bf16 onnxruntime"
read -r -a baselines <<< "${BASELINES:-$bases}"
systems+=("${baselines[@]}")
cargo bench --locked --bench embed --no-run
for round in $(seq 1 "$rounds"); do
  for sys in "${systems[@]}"; do
    echo "bench: round $round/$rounds: $sys ($model, $threads threads)" >&2
    case "$sys" in
      triage-*)
        p="${sys#triage-}"; amx=1; [ "$p" = bf16-avx512 ] && { p=bf16; amx=0; }
        TRIAGE_AMX=$amx RAYON_NUM_THREADS=$threads cargo bench --locked --bench embed -- "${common[@]}" \
          --prefix "$prefix" --precision "$p" > "$out/$sys.$round.jsonl" ;;
      pytorch|pytorch-bf16)
        dtype=float32; [ "$sys" = pytorch-bf16 ] && dtype=bfloat16
        "$venv/bin/python" scripts/bench_torch.py --backend torch --threads "$threads" "${common[@]}" \
          --prefix "$prefix" --dtype "$dtype" > "$out/$sys.$round.jsonl" ;;
      onnxruntime)
        "$venv/bin/python" scripts/bench_torch.py --backend onnx --threads "$threads" "${common[@]}" \
          --prefix "$prefix" > "$out/$sys.$round.jsonl" || echo "bench: onnxruntime skipped" >&2 ;;
    esac
  done
done
joined() { local s="$1" r p=""; for r in $(seq 1 "$rounds"); do p="${p:+$p+}$out/$s.$r.jsonl"; done; echo "$p"; }
ours=(); for sys in "${systems[@]}"; do [[ "$sys" == triage-* ]] && ours+=("$(joined "$sys")"); done
echo "model: $model, threads: $threads, rounds: $rounds (best per case), cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
theirs=(); for sys in "${baselines[@]}"; do theirs+=("$(joined "$sys")"); done
python3 scripts/bench_report.py "${ours[@]}" -- "${theirs[@]}"
