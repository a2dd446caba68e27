#!/usr/bin/env bash
# Compare whatlang and lingua on short messages (the measurement behind src/lang.rs's choice).
# Needs scripts/prepare_data.py to have written $TRIAGE_HOME/data for the zh/en sets.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
cargo run --release --quiet --manifest-path scripts/langid_compare/Cargo.toml -- \
  tests/fixtures/langid_short.jsonl "$home/data"
