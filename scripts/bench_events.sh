#!/usr/bin/env bash
# Live-event latency and /v1/triage throughput on the release build, on a throwaway store:
#   scripts/bench_events.sh [messages] [clients]
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
python3 scripts/bench_events.py --url "http://127.0.0.1:$port" --messages "${1:-200}" --clients "${2:-4}"
