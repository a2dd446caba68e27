#!/usr/bin/env bash
# Set up and run the server on the default model pack: Debian packages, release build, pack
# (downloaded once, verified, cached in $TRIAGE_HOME, default ~/.cache/triage), then serve.
# Extra arguments go to `triage serve` (e.g. --bind 0.0.0.0:8080 --config triage.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
target/release/triage models setup
exec target/release/triage serve "$@"
