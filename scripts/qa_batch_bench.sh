#!/usr/bin/env bash
# Quality inspection of historical conversations at scale (`triage qa run`), with a crash in the
# middle: builds release, synthesises N conversations (zh/en, timestamps, agent ids, violations at
# known rates, plus a few bad lines), runs `triage qa run` once uninterrupted (throughput and peak
# RSS from /usr/bin/time -v), then again into a new output, killed with `kill -9` half-way through
# its expected time and rerun: the output must hold each of the N ids exactly once, byte for byte
# the uninterrupted run's output, and the rejects file each bad line once.
#   scripts/qa_batch_bench.sh
# Env: N (10000), BAD (8), BATCH_SIZE (config default), WORK (a temp folder), TRIAGE_CONFIG.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-10000}"
BAD="${BAD:-8}"
nice cargo build --release --locked
bin="$PWD/target/release/triage"
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
in="$work/conversations.jsonl"
ref="$work/qa.ref.jsonl" ref_rej="$work/qa.ref.rejects.jsonl"
out="$work/qa.jsonl" rej="$work/qa.rejects.jsonl"
rm -f "$ref" "$ref_rej" "$out" "$rej"
"$bin" qa synth --count "$N" --bad "$BAD" --seed 7 --output "$in"
echo "qa_batch_bench: $N conversations + $BAD bad lines, $(du -h "$in" | cut -f1) in $in" >&2
extra=()
[ -n "${BATCH_SIZE:-}" ] && extra+=(--batch-size "$BATCH_SIZE")
now() { date +%s.%N; }
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# Run 1: uninterrupted, measured.
t0=$(now)
/usr/bin/time -v "$bin" qa run --input "$in" --output "$ref" --rejects "$ref_rej" "${extra[@]}" \
  2> "$work/run1.err"
t1=$(now)
grep '^qa: ' "$work/run1.err" | sed 's/^/qa_batch_bench: run 1: /' >&2
rss1=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/run1.err")

# Run 2: the same into a new output, killed with -9 half-way through run 1's wall time.
half=$(python3 -c "print(max(0.01, ($t1 - $t0) / 2))")
"$bin" qa run --input "$in" --output "$out" --rejects "$rej" "${extra[@]}" 2> "$work/run2.err" &
pid=$!
sleep "$half"
killed=no
if kill -9 "$pid" 2>/dev/null; then killed=yes; fi
wait "$pid" 2>/dev/null || true
at_kill=$(lines "$out")
torn=no
[ -s "$out" ] && [ "$(tail -c 1 "$out" | od -An -c | tr -d ' ')" != '\n' ] && torn=yes
echo "qa_batch_bench: run 2 killed (-9) after ${half} s: $killed, $at_kill lines written (torn last line: $torn)" >&2

# Run 3: resume to the end.
/usr/bin/time -v "$bin" qa run --input "$in" --output "$out" --rejects "$rej" "${extra[@]}" \
  2> "$work/run3.err"
grep '^qa: ' "$work/run3.err" | sed 's/^/qa_batch_bench: run 3 (resume): /' >&2
rss3=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/run3.err")

python3 - "$out" "$rej" "$ref" "$N" "$BAD" "$killed" "$at_kill" <<'EOF'
import json, sys
out, rej, ref, n, bad, killed, at_kill = sys.argv[1:8]
n, bad, at_kill = int(n), int(bad), int(at_kill)
ids = [json.loads(l)["id"] for l in open(out, encoding="utf-8")]
want = {f"c{i:06}" for i in range(1, n + 1)}
dups = len(ids) - len(set(ids))
missing = len(want - set(ids))
same = open(out, "rb").read() == open(ref, "rb").read()
lines = [json.loads(l)["line"] for l in open(rej, encoding="utf-8")]
print(f"qa_batch_bench: resumed output {len(ids)} lines, {len(set(ids))} unique ids, {dups} duplicates, "
      f"{missing} missing, identical to the uninterrupted run: {same}; "
      f"rejects {len(lines)} lines ({len(set(lines))} unique)", file=sys.stderr)
ok = (len(ids) == n and dups == 0 and missing == 0 and same
      and len(lines) == bad == len(set(lines)) and killed == "yes" and 0 < at_kill < n)
print("qa_batch_bench: CHECK " + ("OK" if ok else "FAILED"), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF

python3 - "$t0" "$t1" "$N" "${rss1:-0}" "${rss3:-0}" <<'EOF'
import os, sys
t0, t1 = map(float, sys.argv[1:3])
n, r1, r3 = map(int, sys.argv[3:6])
cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].splitlines()[0].strip()
print(f"run 1 (uninterrupted): {n} conversations in {t1 - t0:.2f} s = {n / (t1 - t0):.0f} conv/s "
      f"(process start and scorecard load included), peak RSS {r1 / 1024:.1f} MiB")
print(f"run 3 (resume): peak RSS {r3 / 1024:.1f} MiB; cpu: {cpu}, {os.cpu_count()} cores")
EOF
echo "qa_batch_bench: files in $work" >&2
