#!/usr/bin/env bash
# Run tests/mcp against the mcp SDK 2.x, in a fresh venv of its own.
#
# The workspace lock keeps mcp < 2 (CrewAI caps it), so `uv sync` can never test functionlayer-mcp
# with the SDK most users now install. This script makes a throwaway venv with the workspace's
# core, server and functionlayer-mcp (editable, from this checkout), `mcp>=2`, and the test tools;
# every other dependency is pinned to the version in uv.lock, so the one thing that differs from
# the usual test run is the mcp SDK. It prints the mcp version it tested.
#
# The suite runs once per protocol era the 2.x SDK speaks: clients that open with `initialize`
# (the handshake, as 1.x clients do) and clients on 2026-07-28 (`server/discover`, a per-request
# envelope); FUNCTIONLAYER_TEST_MCP_ERA tells tests/mcp/conftest.py which.
#
# Extra arguments go to pytest, e.g. `bash scripts/test-mcp2.sh -k long_wait`.
# MCP2_VENV names the venv directory (default: a new temporary one, removed afterwards).
# MCP2_ERAS chooses the eras (default "handshake 2026-07-28").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"  # where uv's installer puts it

venv=${MCP2_VENV:-}
if [ -z "$venv" ]; then
  venv=$(mktemp -d -t functionlayer-mcp2-XXXXXX)
  trap 'rm -rf "$venv"' EXIT
fi
started=$(date +%s)

# Same interpreter as the workspace's (no download).
python=$(uv python find --no-project 2>/dev/null || command -v python3)
uv venv -q --allow-existing -p "$python" "$venv"

# Every locked version except mcp's own packages, as constraints.
constraints="$venv/constraints.txt"
uv export -q --frozen --all-packages --all-groups --no-hashes --no-emit-workspace \
  --no-header --no-annotate \
  | grep -vE '^(mcp|mcp-types)==' | grep -vE '^\s*(#|$)' >"$constraints"

VIRTUAL_ENV="$venv" uv pip install -q -c "$constraints" \
  -e packages/core -e "packages/server" -e packages/mcp \
  'mcp>=2,<3' pytest pytest-timeout anyio

mcp_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("mcp"))')
echo "test-mcp2: testing functionlayer-mcp against mcp $mcp_version ($venv)"
case "$mcp_version" in 2.*) ;; *) echo "test-mcp2: expected mcp 2.x" >&2; exit 1 ;; esac

status=0
for era in ${MCP2_ERAS:-handshake 2026-07-28}; do
  echo "test-mcp2: mcp $mcp_version, clients on the $era protocol"
  FUNCTIONLAYER_TEST_MCP_ERA=$era "$venv/bin/python" -m pytest tests/mcp -q -p no:cacheprovider "$@" \
    || status=$?
done
echo "test-mcp2: mcp $mcp_version, pytest exit $status, $(( $(date +%s) - started )) s wall time"
exit "$status"
