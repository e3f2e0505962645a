"""Pause now, resume later, with real processes: shared by the Pydantic AI and OpenAI Agents
end-to-end tests.

A real ``functionlayer-server`` runs (uvicorn, SQLite in a temporary directory); the agent runs
in subprocesses that reach it with an agent token; a person decides in the web inbox over HTTP
as a logged-in user (login form, session cookie, CSRF token), never with the agent's token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer import FunctionCall

from tests._support.inbox import decide_in_inbox, log_in
from tests._support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
PERSON = "alice"
PASSWORD = "alice-inbox-password"


@pytest.fixture(scope="module")
def approval_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the module, with the inbox user who decides."""
    directory = tmp_path_factory.mktemp("approval-server")
    server = ServerProcess(f"sqlite:///{directory / 'server.sqlite3'}", directory / "server.log")
    server.create_user(PERSON, PASSWORD, email="alice@example.com")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def person_decides(server: ServerProcess, call_id: str, action: str, **fields: str) -> FunctionCall:
    """A person logs in to the inbox and decides request ``call_id``: ``action`` is ``approve``,
    ``reject`` (``feedback=``), ``edit`` (``edited_kwargs=`` JSON) or ``respond`` (``response=``).
    Returns the request as the agent side then reads it."""
    with httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False) as browser:
        log_in(browser, PERSON, PASSWORD)
        decide_in_inbox(browser, call_id, {"action": action, **fields})
    with server.client() as agent:
        stored = FunctionCall.model_validate(agent.get(f"/function_calls/{call_id}").json())
    assert stored.status is not None and stored.status.responded_by == PERSON
    return stored


def agent_env(server: ServerProcess, model_base_url: str) -> dict[str, str]:
    """The agent processes' environment: the server with an agent token, the scripted model."""
    return {
        **os.environ,
        "FUNCTIONLAYER_API_BASE": server.api_base,
        "FUNCTIONLAYER_API_TOKEN": server.token,
        "MODEL_BASE_URL": model_base_url,
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }


def agent_process(script: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / script), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_agent(
    script: str, args: Sequence[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = agent_process(script, args, env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def executions(path: Path) -> list[dict[str, Any]]:
    """Every time a tool body ran, as the agent processes recorded it."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def resume_while_person_decides(
    script: str, args: Sequence[str], env: dict[str, str], server: ServerProcess, call_id: str
) -> subprocess.CompletedProcess[str]:
    """Start ``script resume-wait`` (a second process that waits for the decision), let the
    person approve ``call_id`` in the inbox meanwhile, and return how that process ended."""
    waiting = agent_process(script, ["resume-wait", *args], env)
    try:
        person_decides(server, call_id, "approve")
        out, err = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    return subprocess.CompletedProcess(waiting.args, waiting.returncode, out, err)
