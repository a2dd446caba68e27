#!/usr/bin/env bash
# Load test of POST /v1/triage on loopback: builds the release binary, starts the server on the
# default model pack (fetched once into $TRIAGE_HOME, default ~/.cache/triage) with a throwaway
# store, waits for /ready, runs benches/load.rs (capacity, then 0.5x/1x/2x/4x open loop, with the
# server-side p50/p99 of request time, queue wait and forward pass per phase), prints its
# table, stops the server with SIGTERM and checks that it exited 0.
#   scripts/load.sh [extra bench args, e.g. --phase-secs 20 --multipliers 0.5,4 --screenshot shot.png]
# Env: PORT (default 18080), QUEUE_WAIT_MS (default 2000), PHASE_SECS (default 60), EXTRA_TOML
# (appended to the server's config, e.g. 'escalation_head = ""' under '[emotion]' to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-18080}"
queue_wait="${QUEUE_WAIT_MS:-2000}"
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
# One release build for the server and the load generator (the bench profile would build the
# library a second time).
bench=$(cargo build --release --locked --bin triage --bench load --message-format=json-render-diagnostics |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("target", {}).get("name") == "load" and m.get("executable"): print(m["executable"])')
[ -f "$home/models/multilingual-e5-small/model.safetensors" ] || target/release/triage models setup
work=$(mktemp -d)
cat > "$work/triage.toml" <<EOF
[server]
shutdown_timeout_secs = 30
[limits]
queue_wait_ms = $queue_wait
[store]
path = "$work/triage.sqlite"
${EXTRA_TOML:-}
EOF
TRIAGE_HOME="$home" target/release/triage serve --bind "127.0.0.1:$port" --config "$work/triage.toml" \
  2> "$work/server.log" &
pid=$!
cleanup() { kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  if curl -sf "http://127.0.0.1:$port/ready" > /dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "load: server exited" >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/ready" > /dev/null || { echo "load: server not ready" >&2; exit 1; }
status=0
"$bench" --url "http://127.0.0.1:$port" --pid "$pid" \
  --phase-secs "${PHASE_SECS:-60}" --queue-wait-ms "$queue_wait" "$@" || status=$?
kill -TERM "$pid"
started=$(date +%s)
code=0
wait "$pid" || code=$?
echo "server: exit status $code after SIGTERM ($(( $(date +%s) - started )) s to stop)"
grep -E "shutting down|drained|checkpoint|stopped|deadline" "$work/server.log" | sed 's/^/server: /' || true
[ "$code" -eq 0 ] || { echo "load: the server did not exit 0 on SIGTERM" >&2; exit 1; }
exit "$status"
