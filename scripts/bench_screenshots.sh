#!/usr/bin/env bash
# Screenshot recognition on a rendered set (release build, this machine's cores): accuracy,
# unknown rate, confident answers on unrelated images, and latency per screenshot (p50/p90).
#   scripts/bench_screenshots.sh [seed] [n-per-fault]
# Needs Pillow for the renderer (a venv is made in $TRIAGE_HOME/render-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-7}"; n="${2:-12}"
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
venv="$home/render-venv"
scripts/deps.sh
cargo build --release --locked --bin triage
target/release/triage models setup
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pillow; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$venv/bin/python" scripts/render_screenshots.py --out "$out" --seed "$seed" --n-per-fault "$n"
target/release/triage eval --task screenshot --data "$out"
