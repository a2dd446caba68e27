#!/usr/bin/env bash
# Issue 20's multi-replica test: three `triage serve` replicas on one throwaway PostgreSQL,
# SIGKILL of one replica and an immediate stop of PostgreSQL mid-stream, then checks that nothing
# acknowledged was lost or doubled (scripts/replicas.py says what exactly). Loopback only.
#   scripts/replicas.sh                 # release build (default)
#   TRIAGE_BIN=target/debug/triage scripts/replicas.sh
# Env: CONVERSATIONS (48), TURNS (5), BATCH_CONVERSATIONS (400), DEADLINE_SECS (420).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIAGE_BIN:-}" ]; then
  cargo build --release --locked --bin triage
  export TRIAGE_BIN=target/release/triage
fi
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
[ -f "$home/models/multilingual-e5-small/model.safetensors" ] || "$TRIAGE_BIN" models setup
command -v psql > /dev/null || { echo "replicas: needs psql (Debian package postgresql)" >&2; exit 1; }
exec scripts/pg_test.sh python3 scripts/replicas.py
