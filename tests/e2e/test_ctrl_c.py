"""One Ctrl-C at the terminal's approval prompt stops the agent with one line, under every
framework: each example runs in a pseudo-terminal, waits at the prompt, gets ``\\x03`` (the
terminal turns it into SIGINT, as for a person) and must exit within seconds, status 130,
without a traceback and without running the guarded function.

The ControlFlow case also points the example at a model by URL (``OPENAI_BASE_URL``, as for a
local model) with a fresh temporary directory: without internet, it must use the bundled
tokenizer instead of downloading one.

The same with approvals on a real server (``FUNCTIONLAYER_API_BASE``): Ctrl-C while the worker
thread long-polls ends the program within 2 s with one line, and the server then holds the
request as abandoned by its agent.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from functionlayer.testing.model import ScriptedModel, mark_task_successful, math_script

from tests._support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"Approve? [y/N"
EXIT_WITHIN = 10.0  # seconds after Ctrl-C, on a loaded 2-core machine (typically 2-4 s)
START_WITHIN = 240.0  # ControlFlow starts a Prefect server first


def _environment(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "FUNCTIONLAYER_", "TIKTOKEN_"))
    }
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        TMPDIR=str(home / "tmp"),  # tiktoken's default cache lives under it: fresh, empty
        OTEL_SDK_DISABLED="true",
        CREWAI_DISABLE_TELEMETRY="true",
        CREWAI_TRACING_ENABLED="false",
        CREWAI_TESTING="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        TERM="dumb",
    )
    return env


def _interrupt_at_prompt(
    script: str, env: dict[str, str], ready: Callable[[bytes], bool] | None = None
) -> tuple[int, float, str, str]:
    """Run ``script`` in a pty; Ctrl-C at the prompt (or once ``ready(output so far)``).
    Returns (exit status, seconds to exit after Ctrl-C, output before it, output after it)."""
    ready = ready or (lambda output: PROMPT in output)
    python = str(ROOT / ".venv" / "bin" / "python")
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the example
        os.chdir(ROOT)
        os.execve(python, [python, script], env)
    output = b""
    sent_at: float | None = None
    mark = 0
    started = time.monotonic()
    try:
        while True:
            readable, _, _ = select.select([fd], [], [], 0.2)
            if readable:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: every process holding the terminal has gone
                    chunk = b""
                if not chunk:
                    break
                output += chunk
            now = time.monotonic()
            if sent_at is None and ready(output):
                time.sleep(0.3)  # a person's reaction time; the prompt waits for input
                mark = len(output)
                os.write(fd, b"\x03")
                sent_at = time.monotonic()
            if sent_at is None and now - started > START_WITHIN:
                raise AssertionError(f"no approval prompt: {output.decode(errors='replace')}")
            if sent_at is not None and now - sent_at > EXIT_WITHIN + 5:
                break
        waited, status = os.waitpid(pid, os.WNOHANG)
        deadline = time.monotonic() + 5
        while waited == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            waited, status = os.waitpid(pid, os.WNOHANG)
        assert sent_at is not None
        took = time.monotonic() - sent_at
        if waited == 0:
            raise AssertionError(
                f"still running {took:.1f} s after Ctrl-C: {output.decode(errors='replace')}"
            )
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    before = output[:mark].decode(errors="replace")
    after = output[mark:].decode(errors="replace")
    return os.waitstatus_to_exitcode(status), took, before, after


def _check(status: int, took: float, before: str, after: str) -> None:
    assert status == 130, (status, after)
    assert took < EXIT_WITHIN, (took, after)
    assert "Traceback" not in after and "Traceback" not in before, after
    lines = [ln.strip() for ln in after.replace("\r", "").splitlines() if ln.strip()]
    lines = [ln for ln in lines if ln != "^C"]  # the terminal's echo of the keystroke
    assert lines == ["Interrupted (Ctrl-C): multiply was not run. Stopping."], after
    assert "Result" not in after and "Agent:" not in after  # the agent did not carry on


@pytest.mark.parametrize(
    "script",
    [
        "examples/langchain/math_example.py",
        "examples/crewai/crewai_math.py",
        "examples/openai_client/math_example.py",
    ],
)
def test_ctrl_c_at_the_prompt_stops_the_agent(script: str, tmp_path: Path) -> None:
    _check(*_interrupt_at_prompt(script, _environment(tmp_path)))


@pytest.mark.controlflow
def test_ctrl_c_stops_controlflow_with_a_model_url_and_no_internet(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    with ScriptedModel(math_script(finish=mark_task_successful)) as model:
        url = model.base_url
        env.update(OPENAI_BASE_URL=url, OPENAI_API_KEY="local-model")
        status, took, before, after = _interrupt_at_prompt(
            "examples/controlflow/controlflow_math.py", env
        )
    assert f"Using the real model gpt-4o-mini at {url}" in before
    _check(status, took, before, after)


# -- Ctrl-C while the request waits on a server ------------------------------------------------

SERVER_EXIT_WITHIN = 2.0  # seconds after Ctrl-C: the worker's long-poll must not hold the process
SERVER_LINE = (
    "Interrupted (Ctrl-C): {what}; the request is marked abandoned on the server. Stopping."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("ctrl-c-server")
    running = ServerProcess(f"sqlite:///{directory / 'server.sqlite3'}", directory / "server.log")
    running.start()
    try:
        yield running
    finally:
        running.kill()


def _waiting_on(server: ServerProcess, run_ids: set[str]) -> Callable[[bytes], bool]:
    """Ready once the agent's request is pending on the server (and its long-poll, which
    follows the create at once, has had time to start)."""
    found_at: list[float] = []

    def ready(output: bytes) -> bool:
        if found_at:
            return time.monotonic() - found_at[0] > 0.5
        with server.client() as agent:
            items = agent.get("/function_calls", params={"pending": "true"}).json()["items"]
        fresh = [c for c in items if c["run_id"] not in run_ids]
        if fresh:
            found_at.append(time.monotonic())
        return False

    return ready


@pytest.mark.parametrize(
    ("script", "what"),
    [
        ("examples/langchain/math_example.py", "multiply was not run"),
        ("examples/crewai/crewai_math.py", "multiply was not run"),
        ("examples/openai_agents/math_example.py", "multiply was not run"),
        ("examples/pydantic_ai/math_example.py", "multiply was not run"),
        ("examples/core/quickstart.py", "send_invoice was not run"),  # the plain decorator
        pytest.param(
            "examples/controlflow/controlflow_math.py",
            "multiply was not run",
            marks=pytest.mark.controlflow,
        ),
        ("examples/llamaindex/math_example.py", "multiply was not run"),
        ("examples/haystack/math_example.py", "multiply was not run"),
        ("examples/openai_client/math_example.py", "multiply was not run"),
        ("examples/google_adk/math_example.py", "multiply was not run"),
        ("examples/agent_framework/math_example.py", "multiply was not run"),
    ],
)
def test_ctrl_c_during_a_server_long_poll_stops_at_once_and_abandons(
    script: str, what: str, server: ServerProcess, tmp_path: Path
) -> None:
    env = _environment(tmp_path)
    env.update(FUNCTIONLAYER_API_BASE=server.api_base, FUNCTIONLAYER_API_TOKEN=server.token)
    with server.client() as agent:
        before = {c["run_id"] for c in agent.get("/function_calls").json()["items"]}
    status, took, _, after = _interrupt_at_prompt(script, env, _waiting_on(server, before))

    assert status == 130, (status, after)
    assert took < SERVER_EXIT_WITHIN, (took, after)
    assert "Traceback" not in after, after
    lines = [ln.strip() for ln in after.replace("\r", "").splitlines() if ln.strip()]
    assert [ln for ln in lines if ln != "^C"] == [SERVER_LINE.format(what=what)], after
    with server.client() as agent:
        calls = [
            c for c in agent.get("/function_calls").json()["items"] if c["run_id"] not in before
        ]
        assert len(calls) == 1, calls
        call = calls[0]
        assert call["status"]["abandoned_at"] and call["status"]["approved"] is False, call
        audit = agent.get(f"/function_calls/{call['call_id']}/audit").json()["items"]
    assert [e["action"] for e in audit][-1] == "abandoned", audit


HOST_HANDLES_CTRL_C = """
import signal
import subprocess
from functionlayer import FunctionLayer

fl = FunctionLayer()


def host(signum, frame):  # the application's own Ctrl-C handling, installed after ours
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, host)


@fl.require_approval
def multiply(x: int, y: int) -> int:
    print("RAN")
    return x * y


try:
    multiply(2, 5)
except KeyboardInterrupt:
    print("THE HOST STOPPED IT")
"""


def test_a_host_that_handles_ctrl_c_itself_keeps_it_and_the_request_is_abandoned(
    server: ServerProcess, tmp_path: Path
) -> None:
    env = _environment(tmp_path)
    env.update(FUNCTIONLAYER_API_BASE=server.api_base, FUNCTIONLAYER_API_TOKEN=server.token)
    with server.client() as agent:
        before = {c["run_id"] for c in agent.get("/function_calls").json()["items"]}
    ready = _waiting_on(server, before)
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", HOST_HANDLES_CTRL_C],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready(b""):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0 and out.strip() == "THE HOST STOPPED IT", (out, err)
    with server.client() as agent:
        calls = [
            c for c in agent.get("/function_calls").json()["items"] if c["run_id"] not in before
        ]
    assert len(calls) == 1 and calls[0]["status"]["abandoned_at"], calls
