#!/usr/bin/env bash
# Bad screenshot uploads against the release server: each answer's status and field, and the
# server's memory before and after (it must stay bounded):
#   scripts/bench_bad_uploads.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --bin triage
target/release/triage models setup
dir=$(mktemp -d); port=$((20000 + RANDOM % 20000))
printf '[store]\npath = "%s/triage.sqlite"\n' "$dir" > "$dir/triage.toml"
target/release/triage serve --bind "127.0.0.1:$port" --config "$dir/triage.toml" 2> "$dir/log" &
pid=$!; trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do curl -sf "127.0.0.1:$port/ready" >/dev/null && break; sleep 0.5; done
python3 scripts/bench_bad_uploads.py --url "http://127.0.0.1:$port" --pid "$pid" --rounds "${1:-10}"
