#!/usr/bin/env bash
# Screenshot recognition on a rendered set (release build, this machine's cores): accuracy,
# unknown rate, confident answers on unrelated, success and neutral images, latency per
# screenshot (p50/p90) and CPU per screenshot, beside the bare tesseract CLI on the same images.
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
# Baseline in the same run: the tesseract CLI alone (OCR only, no preprocessing, no matching)
# on the same images, one OMP thread as the server's OCR workers use.
python3 - "$out" <<'PY'
import glob, os, resource, statistics, subprocess, sys, time
ms = []
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.png")) + glob.glob(os.path.join(sys.argv[1], "*.jpg"))):
    t = time.perf_counter()
    subprocess.run(["tesseract", f, "-", "-l", "eng+chi_sim"], capture_output=True,
                   env=dict(os.environ, OMP_THREAD_LIMIT="1"))
    ms.append((time.perf_counter() - t) * 1000)
ms.sort()
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
user, system = (r1.ru_utime - r0.ru_utime) * 1000 / len(ms), (r1.ru_stime - r0.ru_stime) * 1000 / len(ms)
print(f"baseline tesseract CLI (OCR only) on {len(ms)} images: p50 {statistics.median(ms):.0f} ms, "
      f"p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms; "
      f"CPU per image {user + system:.0f} ms (user {user:.0f}, system {system:.0f})")
PY
