#!/usr/bin/env bash
# Issue 20's throughput comparison: POST /v1/triage (benches/load.rs, round-robin over the
# replicas) against one server on SQLite, then 1, 2 and 3 replicas on one PostgreSQL, in one run
# on this machine; prints capacity, the ratio to SQLite, and the unloaded and loaded latencies
# (the unloaded p50/p99 difference is the database round trip). Each replica gets
# nproc/replicas inference threads, so every setup has the same CPU. Release build.
#   scripts/load_replicas.sh        Env: PHASE_SECS (15), CAPACITY_SECS (15), SETUPS
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIAGE_PG_BIN:-}" ]; then exec scripts/pg_test.sh "$0" "$@"; fi
bench=$(cargo build --release --locked --bin triage --bench load --message-format=json-render-diagnostics |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("target", {}).get("name") == "load" and m.get("executable"): print(m["executable"])')
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
[ -f "$home/models/multilingual-e5-small/model.safetensors" ] || target/release/triage models setup
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cores=$(nproc)
run_setup() { # backend replicas
  local backend=$1 n=$2 label="$1-$2" urls="" plist="" db="triage_load_$1_$2"
  pids=()
  if [ "$backend" = postgres ]; then
    psql "$TRIAGE_TEST_DATABASE_URL" -qAtX -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    store="backend = \"postgres\"
url = \"${TRIAGE_TEST_DATABASE_URL/dbname=postgres/dbname=$db}\""
  else
    store="path = \"$work/$label.sqlite\""
  fi
  for i in $(seq 1 "$n"); do
    port=$((18400 + i))
    cat > "$work/$label-$i.toml" <<TOML
[server]
threads = $(( cores / n > 0 ? cores / n : 1 ))
[store]
$store
[[models]]
name = "multilingual-e5-small"
source = "pack:multilingual-e5-small"
prefix = "query: "
TOML
    TRIAGE_HOME="$home" target/release/triage serve --bind "127.0.0.1:$port" \
      --config "$work/$label-$i.toml" 2> "$work/$label-$i.log" &
    pids+=($!)
    urls="$urls${urls:+,}http://127.0.0.1:$port"
    plist="$plist${plist:+,}$!"
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 600); do
      curl -sf "http://127.0.0.1:$((18400 + i))/ready" > /dev/null && break
      sleep 0.5
    done
  done
  echo "== $label: $urls" >&2
  "$bench" --url "$urls" --pid "$plist" --phase-secs "${PHASE_SECS:-15}" \
    --capacity-secs "${CAPACITY_SECS:-15}" --multipliers 1 > "$work/$label.out" 2> "$work/$label.err" || true
  cat "$work/$label.err" >&2
  for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
  pids=()
}
for s in ${SETUPS:-sqlite:1 postgres:1 postgres:2 postgres:3}; do run_setup "${s%%:*}" "${s##*:}"; done
python3 - "$work" ${SETUPS:-sqlite:1 postgres:1 postgres:2 postgres:3} <<'PY'
import re, sys
work, setups = sys.argv[1], [s.replace(":", "-") for s in sys.argv[2:]]
rows, base = [], None
for s in setups:
    err = open(f"{work}/{s}.err").read()
    out = open(f"{work}/{s}.out").read()
    cap = float(re.search(r"capacity: ([\d.]+)", err).group(1))
    un = re.search(r"unloaded: \d+ answers, p50 (\d+) ms, p99 (\d+) ms", err)
    open1 = [l for l in out.splitlines() if l.startswith("| open 1x")]
    cols = open1[0].split("|") if open1 else []
    base = base or cap
    rows.append(f"| {s} | {cap:.1f} | {cap / base:.2f}x | {un.group(1)} / {un.group(2)} | "
                f"{cols[6].strip() if cols else '?'} / {cols[7].strip() if cols else '?'} |")
print("\n| setup | capacity triage/s | vs first | unloaded p50 / p99 ms | open 1x p50 / p99 ms |")
print("|---|---|---|---|---|")
print("\n".join(rows))
PY
