#!/usr/bin/env bash
# Live quality-inspection latency (issue 22): starts a release `triage serve` on a scratch store
# and runs scripts/qa_latency.py against it: the time from posting a rude agent reply to its `qa`
# event on the quality queue, beside the `triage` event of a customer message on the same server.
#   scripts/qa_latency.sh            # N=200 samples
# Env: N, PORT (18099), TRIAGE_BIN (default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIAGE_BIN:-}" ]; then
  nice cargo build --release --locked --bin triage
  TRIAGE_BIN=target/release/triage
fi
port="${PORT:-18099}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
printf '[store]\npath = "%s/triage.sqlite"\n' "$work" > "$work/triage.toml"
TRIAGE_CONFIG= "$TRIAGE_BIN" serve --bind "127.0.0.1:$port" --config "$work/triage.toml" 2> "$work/server.log" &
pid=$!
for _ in $(seq 600); do
  curl -fsS "http://127.0.0.1:$port/ready" > /dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$work/server.log"; exit 1; }
  sleep 0.5
done
python3 scripts/qa_latency.py --url "http://127.0.0.1:$port" --n "${N:-200}"
