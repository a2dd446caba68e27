#!/usr/bin/env bash
# Compile-check the CUDA build (`--features cuda`) on a machine without a GPU or a CUDA toolkit:
# fetches NVIDIA's CUDA 13.0 compiler wheels from PyPI once (nvcc, nvvm, crt, cccl and runtime
# headers; ~100 MB, cached in $TRIAGE_HOME/cuda-13.0), puts that nvcc on PATH and runs
# `cargo check --features cuda` (candle's kernels are compiled to PTX for CUDA_COMPUTE_CAP, default
# 90 = Hopper). Checks, not links: linking needs the driver's libcuda and cuBLAS (a real toolkit).
#   scripts/cuda_check.sh [extra cargo check args, e.g. --all-targets]
set -euo pipefail
cd "$(dirname "$0")/.."
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
kit="$home/cuda-13.0"
nvcc="$kit/nvidia/cu13/bin/nvcc"
if [ ! -x "$nvcc" ]; then
  echo "cuda_check: fetching the CUDA 13.0 compiler wheels into $kit" >&2
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
    -d "$wheels" "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-runtime==13.0.*"
  mkdir -p "$kit"
  for w in "$wheels"/*.whl; do python3 -m zipfile -e "$w" "$kit"; done
  chmod +x "$kit"/nvidia/cu13/bin/* "$kit"/nvidia/cu13/nvvm/bin/*
fi
export PATH="$kit/nvidia/cu13/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
"$nvcc" --version | tail -2
exec cargo check --locked --features cuda --target-dir target/cuda-check "$@"
