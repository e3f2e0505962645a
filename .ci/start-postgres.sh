#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1:${PGPORT:-55432} for the tests and print its URL.
# Debian's postgresql package must be installed (.ci/run does it). Idempotent. Works as root or
# as a user with sudo: the cluster belongs to the postgres system user either way.
set -euo pipefail
port=${PGPORT:-55432}
dir=${FL_PGDATA:-/tmp/functionlayer-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
as_postgres() {  # run a command as the postgres user
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$1"; else sudo -n -u postgres /bin/sh -c "$1"; fi
}
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
  echo "start-postgres.sh: run it as root or as a user with passwordless sudo" >&2
  exit 1
fi

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
  if ! as_root test -f "$dir/PG_VERSION"; then
    as_root rm -rf "$dir"
    as_root mkdir -p "$dir"
    as_root chown postgres:postgres "$dir"
    as_root chmod 700 "$dir"
    as_postgres "cd /tmp && $bin/initdb -D '$dir' -A trust -U postgres" >/dev/null
  fi
  as_root chown -R postgres:postgres "$dir"
  as_postgres "cd /tmp && $bin/pg_ctl -D '$dir' -l '$dir/log' -w -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off' start" >/dev/null
fi
echo "postgresql://postgres@127.0.0.1:$port/postgres"
