#!/usr/bin/env bash
# Batch summarization at scale, with a crash in the middle: builds release, generates N synthetic
# support conversations (zh/en, plus a few deliberately bad lines), runs `triage batch summarize`,
# kills it with `kill -9` about halfway, reruns it, and checks that the output holds exactly N
# unique ids (no duplicate, none lost) and the rejects file exactly the bad lines, once each.
# Prints throughput and peak RSS of both runs.
#   scripts/bench_batch.sh
# Env: N (10000), BAD (8), BATCH_SIZE (config default), WORK (a temp folder), TRIAGE_CONFIG.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-10000}"
BAD="${BAD:-8}"
cargo build --release --locked --bin triage
bin="$PWD/target/release/triage"
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
[ -f "$home/models/multilingual-e5-small/model.safetensors" ] || "$bin" models setup
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
in="$work/conversations.jsonl" out="$work/summaries.jsonl" rej="$work/rejects.jsonl"
rm -f "$out" "$rej"
"$bin" batch synth --count "$N" --bad "$BAD" --seed 7 --output "$in"
echo "bench_batch: $N conversations + $BAD bad lines, $(du -h "$in" | cut -f1) in $in" >&2
args=(batch summarize --input "$in" --output "$out" --rejects "$rej")
[ -n "${BATCH_SIZE:-}" ] && args+=(--batch-size "$BATCH_SIZE")

lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
now() { date +%s.%N; }

# Run 1: kill -9 once about half the conversations are written; peak RSS read from /proc.
t0=$(now)
"$bin" "${args[@]}" 2> "$work/run1.err" &
pid=$!
peak1=0
while kill -0 "$pid" 2>/dev/null; do
  r=$(hwm "$pid"); [ -n "$r" ] && [ "$r" -gt "$peak1" ] && peak1=$r
  if [ "$(lines "$out")" -ge $((N / 2)) ]; then
    kill -9 "$pid"
    break
  fi
  sleep 0.2
done
wait "$pid" 2>/dev/null || true
t1=$(now)
at_kill=$(lines "$out")
bytes_at_kill=$(stat -c %s "$out")
torn=no
[ "$bytes_at_kill" -gt 0 ] && [ "$(tail -c 1 "$out" | od -An -c | tr -d ' ')" != '\n' ] && torn=yes
echo "bench_batch: run 1 killed (-9) with $at_kill lines written (torn last line: $torn)" >&2

# Run 2: resume to the end.
t2=$(now)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v "$bin" "${args[@]}" 2> "$work/run2.err"
  peak2=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/run2.err")
else
  "$bin" "${args[@]}" 2> "$work/run2.err" &
  pid=$!
  peak2=0
  while kill -0 "$pid" 2>/dev/null; do
    r=$(hwm "$pid"); [ -n "$r" ] && [ "$r" -gt "$peak2" ] && peak2=$r
    sleep 0.2
  done
  wait "$pid"
fi
t3=$(now)
grep '^batch: read\|^batch: [0-9.]* conv/s' "$work/run2.err" | sed 's/^/bench_batch: run 2: /' >&2

# Checks: N unique ids c000001..cN, each once; every bad line rejected once.
python3 - "$out" "$rej" "$N" "$BAD" <<'EOF'
import json, sys
out, rej, n, bad = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids = [json.loads(l)["id"] for l in open(out, encoding="utf-8")]
want = {f"c{i:06}" for i in range(1, n + 1)}
dups = len(ids) - len(set(ids))
missing = len(want - set(ids))
lines = [json.loads(l)["line"] for l in open(rej, encoding="utf-8")]
print(f"bench_batch: output {len(ids)} lines, {len(set(ids))} unique ids, {dups} duplicates, "
      f"{missing} missing; rejects {len(lines)} lines ({len(set(lines))} unique)", file=sys.stderr)
ok = len(ids) == n and dups == 0 and missing == 0 and len(lines) == bad == len(set(lines))
print("bench_batch: CHECK " + ("OK" if ok else "FAILED"), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF

python3 - "$t0" "$t1" "$t2" "$t3" "$at_kill" "$N" "$peak1" "${peak2:-0}" <<'EOF'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
at_kill, n, p1, p2 = map(int, sys.argv[5:9])
r1, r2 = t1 - t0, t3 - t2
print(f"run 1 (killed): {at_kill} conversations in {r1:.1f} s = {at_kill / r1:.1f} conv/s (model load included), peak RSS {p1 / 1024:.0f} MiB")
print(f"run 2 (resume): {n - at_kill} conversations in {r2:.1f} s = {(n - at_kill) / r2:.1f} conv/s (model load included), peak RSS {p2 / 1024:.0f} MiB")
print(f"overall: {n} conversations in {r1 + r2:.1f} s = {n / (r1 + r2):.1f} conv/s; cpu: {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}, {__import__('os').cpu_count()} cores")
EOF
echo "bench_batch: files in $work" >&2
