#!/usr/bin/env bash
# Run a command (default: `cargo test --locked`) beside a throwaway PostgreSQL: Debian's package
# (scripts/deps.sh installs it), a cluster made by initdb in a mktemp -d folder owned by an
# unprivileged user (`postgres`, or `nobody`, when this runs as root), listening only on a unix
# socket in that folder, stopped and removed on exit. The command sees TRIAGE_TEST_DATABASE_URL
# and TRIAGE_REQUIRE_POSTGRES=1, so the store tests run their PostgreSQL cases and fail rather
# than skip them. Without the package it says so and runs the command alone (the cases skip).
set -euo pipefail
[ $# -gt 0 ] || set -- cargo test --locked
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg_test: PostgreSQL is not installed (Debian package postgresql): its store tests are skipped" >&2
  "$@"
  exit
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/triage-pg.XXXXXX")
if [ "$(id -u)" = 0 ]; then
  user=postgres
  id -u "$user" >/dev/null 2>&1 || user=nobody
  chown "$user" "$dir"
  as() { runuser -u "$user" -- "$@"; }
else
  as() { "$@"; }
fi
chmod 700 "$dir"
stop() {
  as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
if ! as "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  exit 1
fi
# fsync off: a throwaway cluster; crash safety is not what these tests measure (a stop with
# `-m immediate` keeps every committed row: the operating system still holds the pages).
export TRIAGE_PG_OPTS="-c listen_addresses= -k $dir -c fsync=off -c max_connections=300"
if ! as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "$TRIAGE_PG_OPTS" start >/dev/null; then
  cat "$dir/server.log" >&2
  exit 1
fi
export TRIAGE_TEST_DATABASE_URL="host=$dir user=postgres dbname=postgres"
export TRIAGE_REQUIRE_POSTGRES=1
# For scripts that stop and restart the server (scripts/replicas.py): how, and as whom.
export TRIAGE_PG_BIN="$bin" TRIAGE_PG_DATA="$dir/data" TRIAGE_PG_SOCKET="$dir"
export TRIAGE_PG_USER="${user:-}"
echo "pg_test: $("$bin/postgres" --version) on the socket in $dir" >&2
"$@"
