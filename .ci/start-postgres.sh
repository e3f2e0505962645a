#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1:${PGPORT:-55432} for the tests and print its URL.
# Debian's postgresql package must be installed (.ci/run does it). Idempotent.
set -euo pipefail
port=${PGPORT:-55432}
dir=${FL_PGDATA:-/tmp/functionlayer-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
  if [ ! -f "$dir/PG_VERSION" ]; then
    rm -rf "$dir"; mkdir -p "$dir"; chown postgres:postgres "$dir"
    su postgres -s /bin/sh -c "$bin/initdb -D $dir -A trust -U postgres" >/dev/null
  fi
  chown -R postgres:postgres "$dir"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir -l $dir/log -w -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off' start" >/dev/null
fi
echo "postgresql://postgres@127.0.0.1:$port/postgres"
