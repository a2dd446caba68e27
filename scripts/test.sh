#!/usr/bin/env bash
# Set up and run the whole test suite: Debian packages, the default model pack (cached), format
# and lint checks, then every test (unit, HTTP, parity against the Python/C references, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export TRIAGE_REQUIRE_MODELS=1   # tests that need the pack fail instead of skipping
cargo build --locked --features fuzzing --bin triage   # the features `cargo test` builds with: one compile
target/debug/triage models setup
python3 scripts/prepare_data.py >/dev/null   # public dev sets for the parity test (skips when absent)
cargo fmt --check
python3 scripts/module_graph.py   # the crate's modules import only downward: no cycle
cargo clippy --locked --all-targets -- -D warnings
# The store tests also run against a throwaway PostgreSQL (started and stopped by pg_test.sh).
scripts/pg_test.sh cargo test --locked
# Three replicas on one PostgreSQL through a replica's SIGKILL and a database restart (issue 20).
TRIAGE_BIN=target/debug/triage scripts/replicas.sh
# The sample deployment (scripts/deploy/): its unit command lines behind nginx, a replica killed.
TRIAGE_BIN=target/debug/triage scripts/deploy_check.sh
# Bulk knowledge-base imports through a SIGKILL of the server and a restart (issue 21).
TRIAGE_BIN=target/debug/triage python3 scripts/kb_durability.py
