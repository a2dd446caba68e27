#!/usr/bin/env bash
# Exercises the sample deployment in scripts/deploy/: the command lines of its systemd units
# (triage-migrate.service once, then triage@.service twice) on a throwaway PostgreSQL, behind
# nginx with deploy/nginx.conf. Through the proxy: triage messages, an event stream, a replica
# killed with SIGKILL (the proxy skips it, nothing fails), the stream resumed with Last-Event-ID
# (on whichever replica), the replica restarted. Installs nginx (Debian) when missing.
#   scripts/deploy_check.sh     Env: TRIAGE_BIN (default target/release/triage, built if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIAGE_PG_BIN:-}" ]; then
  if ! command -v nginx > /dev/null && [ ! -x /usr/sbin/nginx ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx > /dev/null
  fi
  if [ -z "${TRIAGE_BIN:-}" ]; then
    cargo build --release --locked --bin triage
    export TRIAGE_BIN=target/release/triage
  fi
  exec scripts/pg_test.sh "$0" "$@"
fi
bin=$(realpath "$TRIAGE_BIN")
work=$(mktemp -d)
pids=()
declare -A pid
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proxy=$(free_port); p1=$(free_port); p2=$(free_port)
psql "$TRIAGE_TEST_DATABASE_URL" -qAtX -c "DROP DATABASE IF EXISTS triage_deploy" -c "CREATE DATABASE triage_deploy"
export TRIAGE_DATABASE_URL="${TRIAGE_TEST_DATABASE_URL/dbname=postgres/dbname=triage_deploy}"
sed "s|/srv/triage-shared/batch|$work/batch|" scripts/deploy/triage.toml > "$work/triage.toml"
unit_cmd() { # unit file, port: its ExecStart line for this machine
  sed -n 's/^ExecStart=//p' "$1" | sed "s|/usr/local/bin/triage|$bin|; s|/etc/triage/triage.toml|$work/triage.toml|; s|%i|$2|"
}
# shellcheck disable=SC2046
$(unit_cmd scripts/deploy/triage-migrate.service 0)
start() { # port
  # shellcheck disable=SC2046
  $(unit_cmd scripts/deploy/triage@.service "$1") 2>> "$work/replica-$1.log" &
  pids+=($!)
  pid[$1]=$!
}
start "$p1"; start "$p2"
sed "s/listen 8080;/listen 127.0.0.1:$proxy;/; s/127.0.0.1:8081/127.0.0.1:$p1/; s/127.0.0.1:8082/127.0.0.1:$p2/" \
  scripts/deploy/nginx.conf > "$work/site.conf"
mkdir -p "$work/nginx"
cat > "$work/nginx-main.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    include $work/site.conf;
}
CONF
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx_bin" -p "$work/nginx" -c "$work/nginx-main.conf"
url="http://127.0.0.1:$proxy"
for port in "$p1" "$p2"; do
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break; sleep 0.5; done
done
curl -sf "$url/ready" > /dev/null || { echo "deploy_check: not ready through the proxy" >&2; exit 1; }
send() { # first last: triage messages through the proxy; every answer must be 200
  for i in $(seq "$1" "$2"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      -d "{\"conversation_id\":\"deploy-$((i % 5))\",\"text\":\"Where is my order $i? 我的订单$i在哪里？\"}" "$url/v1/triage")
    [ "$code" = 200 ] || { echo "deploy_check: message $i answered $code through the proxy" >&2; tail -n 5 "$work/nginx/error.log" >&2; exit 1; }
  done
}
events() { grep -c '^id:' "$1" || true; }
curl -sN -H 'Last-Event-ID: 0' "$url/v1/events" > "$work/sse1" &
sse=$!
sleep 1
send 1 10
for _ in $(seq 1 50); do [ "$(events "$work/sse1")" -ge 10 ] && break; sleep 0.2; done
kill "$sse"
seen=$(events "$work/sse1")
last=$(grep '^id:' "$work/sse1" | tail -n 1 | cut -c4- | tr -d ' ')
kill -9 "${pid[$p1]}"
wait "${pid[$p1]}" 2>/dev/null || true   # gone: a request racing the crash itself may get 502 (clients retry)
send 11 30
curl -sN -H "Last-Event-ID: $last" "$url/v1/events" > "$work/sse2" &
sse=$!
for _ in $(seq 1 50); do [ "$(events "$work/sse2")" -ge 20 ] && break; sleep 0.2; done
kill "$sse"
resumed=$(events "$work/sse2")
start "$p1"
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$p1/ready" > /dev/null && break; sleep 0.5; done
send 31 40
stored=$(psql "$TRIAGE_DATABASE_URL" -qAtX -c "SELECT COUNT(*) FROM turns")
echo "deploy_check: 40 messages through nginx, all 200 (one replica killed after 10, restarted after 30);" \
  "stream: $seen events, then $resumed after Last-Event-ID $last; turns stored: $stored"
[ "$seen" = 10 ] && [ "$resumed" = 20 ] && [ "$stored" = 40 ] || { echo "deploy_check: FAILED" >&2; exit 1; }
echo "deploy_check: ok"
