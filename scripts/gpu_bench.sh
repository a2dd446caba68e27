#!/usr/bin/env bash
# GPU side of the CUDA benchmark: run from the bundle that `scripts/cuda_check.sh --bundle DIR`
# makes (this file is its run.sh), on a machine with an NVIDIA GPU and PyTorch (CUDA 13 wheels).
# Per model: seeded random weights (gpu_models.py), then triage (benches/embed.rs, candle CUDA,
# f32) and PyTorch (CUDA, f32) interleaved for ROUNDS rounds on the same texts (batch 1..512,
# ~16 and ~128 tokens), the ratio table, and the cosine between the two systems' embeddings.
#   gpu-bundle/run.sh [OUTDIR]      env: MODELS, ROUNDS (2), MIN_SECONDS (2), DEVICE (cuda; cpu
#                                   is a dry run of this script on a machine without a GPU)
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-${OUT:-/tmp/gpu-bench}}"
mkdir -p "$out"
py=python3
# The CUDA 13 libraries the binary links (cuBLAS, cuRAND, runtime) from PyTorch's nvidia wheels,
# else from a CUDA toolkit; libcuda.so.1 comes with the driver.
lib=$($py -c 'import glob, site; print(":".join(sorted(p for d in site.getsitepackages() for p in glob.glob(d + "/nvidia/*/lib"))))')
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && lib="$lib:$d"; done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$lib"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
ldd ./embed | grep -E "libcuda|cublas|curand|cudart"
if ldd ./embed | grep -q "not found"; then
  echo "gpu_bench: missing libraries (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)" >&2
  exit 1
fi
device="${DEVICE:-cuda}"
rounds="${ROUNDS:-2}"
secs="${MIN_SECONDS:-2}"
for m in ${MODELS:-all-MiniLM-L6-v2 multilingual-e5-small}; do
  dir="models/$m"
  prefix=""; [ "$m" = multilingual-e5-small ] && prefix="query: "
  $py gpu_models.py "$dir"
  ours=""; theirs=""
  for r in $(seq 1 "$rounds"); do
    ./embed --model-dir "$dir" --texts texts.json --prefix "$prefix" --device "$device" \
      --min-seconds "$secs" --dump "$out/$m.triage.json" > "$out/$m.triage.$r.jsonl"
    $py bench_torch.py --backend torch --device "$device" --threads 8 --model-dir "$dir" --texts texts.json \
      --prefix "$prefix" --min-seconds "$secs" --dump "$out/$m.torch.json" > "$out/$m.torch.$r.jsonl"
    ours="${ours:+$ours+}$out/$m.triage.$r.jsonl"; theirs="${theirs:+$theirs+}$out/$m.torch.$r.jsonl"
  done
  echo "model: $m (random weights, seed 0), rounds: $rounds (best per case)"
  $py bench_report.py "$ours" -- "$theirs"
  $py - "$out/$m.triage.json" "$out/$m.torch.json" <<'PY'
import json, sys
import numpy as np
a, b = (json.load(open(p)) for p in sys.argv[1:3])
worst = min(float(np.min(np.sum(np.array(a[c]) * np.array(b[c]), axis=1))) for c in a)
print(f"embeddings triage vs pytorch (same device): min cosine {worst:.6f} over {sum(len(v) for v in a.values())} texts")
PY
done
