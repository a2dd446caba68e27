#!/usr/bin/env bash
# Build for CUDA (`--features cuda`) on a machine without a GPU or a CUDA toolkit. Fetches NVIDIA's
# CUDA 13.0 compiler wheels from PyPI once (nvcc, nvvm, crt, cccl and runtime headers; ~100 MB,
# cached in $TRIAGE_HOME/cuda-13.0) and puts that nvcc on PATH; candle's kernels are compiled to
# PTX for CUDA_COMPUTE_CAP (default 90 = Hopper).
#   scripts/cuda_check.sh [extra cargo check args]   `cargo check --features cuda` (no linking)
#   scripts/cuda_check.sh --bundle DIR               a GPU benchmark bundle in DIR (see below)
# --bundle also fetches the cuBLAS, cuRAND and NVRTC 13 wheels (~590 MB, libraries only kept),
# links against them and against a stub libcuda.so.1 made from cudarc's driver bindings (the real
# one comes with the GPU driver at run time), builds the embedding benchmark (benches/embed.rs)
# in release, strips it and writes DIR/gpu-bundle.tar.xz with it, scripts/gpu_bench.sh's helpers
# and the benchmark texts and model configs/tokenizers. On a GPU machine with PyTorch (which
# brings the same CUDA 13 libraries): `tar xJf gpu-bundle.tar.xz && gpu-bundle/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
kit="$home/cuda-13.0"
cu="$kit/nvidia/cu13"
nvcc="$cu/bin/nvcc"
fetch() { # wheel specs... -> extracted into $kit
  local wheels
  wheels=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
    -d "$wheels" "$@"
  mkdir -p "$kit"
  for w in "$wheels"/*.whl; do python3 -m zipfile -e "$w" "$kit"; done
  rm -rf "$wheels"
}
if [ ! -x "$nvcc" ]; then
  echo "cuda_check: fetching the CUDA 13.0 compiler wheels into $kit" >&2
  fetch "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-runtime==13.0.*"
  chmod +x "$cu"/bin/* "$cu"/nvvm/bin/*
fi
export PATH="$cu/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
"$nvcc" --version | tail -2
scripts/deps.sh
if [ "${1:-}" != --bundle ]; then
  exec cargo check --locked --features cuda --target-dir target/cuda-check "$@"
fi

out="${2:?usage: scripts/cuda_check.sh --bundle DIR}"
if [ ! -e "$cu/lib/libcublasLt.so.13" ]; then
  echo "cuda_check: fetching the cuBLAS, cuRAND and NVRTC wheels into $kit" >&2
  fetch "nvidia-cublas==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-curand==10.4.*"
  rm -f "$cu"/lib/libnvblas* "$cu"/lib/*.alt.*
fi
for lib in cublas cublasLt nvrtc cudart; do ln -sf "lib$lib.so.13" "$cu/lib/lib$lib.so"; done
ln -sf libcurand.so.10 "$cu/lib/libcurand.so"
# The driver API (libcuda) ships with the GPU driver, not on PyPI: link against a stub that
# defines every entry point cudarc declares; the dynamic loader binds the real libcuda.so.1.
cargo fetch --locked -q
cudarc=$(cargo metadata --locked --format-version 1 --features cuda |
  python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"))')
mkdir -p "$cu/lib/stubs"
sed -nE 's/^ +fn (cu[A-Za-z0-9_]+)\(.*/\1/p' "$(dirname "$cudarc")/src/driver/sys/mod.rs" | sort -u |
  sed 's/.*/int &(void) { return 999; }/' > "$cu/lib/stubs/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cu/lib/stubs/libcuda.so" "$cu/lib/stubs/cuda_stub.c"
export CUDA_HOME="$cu"
bin=$(cargo bench --locked --features cuda --target-dir target/cuda-bundle --bench embed --no-run \
  --message-format json | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "embed" and m.get("executable"):
        print(m["executable"])')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b="$stage/gpu-bundle"
mkdir -p "$b/models"
strip -o "$b/embed" "$bin"
# The OCR libraries are linked into every binary of the crate (a C++ symbol both they and libstdc++
# define), though the benchmark calls none of them; a GPU machine does not have them.
if ! command -v patchelf >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq patchelf >/dev/null
fi
for lib in $(readelf -d "$b/embed" | sed -nE 's/.*NEEDED.*\[(lib(tesseract|lept)[^]]*)\].*/\1/p'); do
  patchelf --remove-needed "$lib" "$b/embed"
done
cp scripts/gpu_bench.sh "$b/run.sh"
cp scripts/bench_torch.py scripts/bench_report.py scripts/gpu_models.py "$b/"
python3 scripts/bench_texts.py --batches 1,8,32,128,512 > "$b/texts.json"
for m in all-MiniLM-L6-v2 multilingual-e5-small; do
  src="$home/models/$m"
  [ -f "$src/config.json" ] || cargo run --locked --release --bin triage -- models setup
  mkdir -p "$b/models/$m"
  for f in config.json tokenizer.json tokenizer_config.json sentence_bert_config.json; do
    [ -f "$src/$f" ] && cp "$src/$f" "$b/models/$m/"
  done
done
mkdir -p "$out"
tar -C "$stage" -cJf "$out/gpu-bundle.tar.xz" gpu-bundle
ls -la "$out/gpu-bundle.tar.xz"
