#!/usr/bin/env bash
# Run the whole test suite: installs what the tests need (Debian chromium and PostgreSQL when
# missing), starts a throwaway PostgreSQL cluster, then runs pytest through uv.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k terminal`; the tests run in
# FL_TEST_WORKERS parallel workers (default 4; 0 for one process).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"  # where uv's installer puts it

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing ${need[*]} (needed by the browser and PostgreSQL tests)..."
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"  # sudo drops the environment: pass it by env
  $sudo_cmd apt-get update -q >/dev/null
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
FUNCTIONLAYER_TEST_POSTGRES_URL=${FUNCTIONLAYER_TEST_POSTGRES_URL:-$(bash .ci/start-postgres.sh)}
export FUNCTIONLAYER_TEST_POSTGRES_URL
# Parallel workers (pytest-xdist): most tests wait on subprocesses, sockets and sleeps rather
# than the CPU, so 4 workers pay on 2 cores. FL_TEST_WORKERS=0 runs in one process.
workers=${FL_TEST_WORKERS:-4}
if [ "$workers" = 0 ]; then
  exec uv run --all-packages --all-groups pytest "$@"
fi
exec uv run --all-packages --all-groups pytest -n "$workers" "$@"
