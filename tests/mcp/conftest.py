"""Fixtures for the MCP gateway and permission-prompt tests.

Everything runs for real, across processes: a ``functionlayer-server`` (uvicorn, SQLite), the
gateway started by the ``mcp`` client SDK as a subprocess, and the gateway's own upstream (the
FastMCP ``bank_server.py``) as its subprocess. A person decides in the web inbox, logged in
through the login form, with the form's CSRF token: :func:`person_decides`.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests._support.inbox import csrf_of, decide_in_inbox, log_in
from tests._support.servers import ServerProcess

HERE = Path(__file__).parent
BANK = HERE / "bank_server.py"
PERSON = "alice"
PASSWORD = "correct horse battery staple"
PENDING_RE = re.compile(r'class="request-row" data-call-id="([^"]+)"')


@pytest.fixture(scope="module")
def fl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real FunctionLayer server with one inbox user, shared by a module's tests."""
    directory = tmp_path_factory.mktemp("fl-server")
    server = ServerProcess(f"sqlite:///{directory / 'fl.sqlite3'}", directory / "server.log")
    server.create_user(PERSON, PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def bank_log(tmp_path: Path) -> Path:
    return tmp_path / "bank.jsonl"


def received(log: Path) -> list[dict[str, Any]]:
    """Every call the upstream received, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def server_env(server: ServerProcess, bank_log: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FUNCTIONLAYER_API_BASE": server.api_base,
        "FUNCTIONLAYER_API_TOKEN": server.token,
        "BANK_LOG": str(bank_log),
    }
    env.update(extra)
    return env


MODERN = os.environ.get("FUNCTIONLAYER_TEST_MCP_ERA") == "2026-07-28"
"""Whether clients speak the 2026-07-28 protocol (``server/discover``, a per-request envelope)
instead of the ``initialize`` handshake: mcp 2.x only; scripts/test-mcp2.sh runs both."""


@contextlib.asynccontextmanager
async def mcp_session(
    args: list[str], env: dict[str, str], errlog: Path, *, modern: bool | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized ``mcp`` client session with ``functionlayer-mcp <args>`` (a subprocess).

    ``modern``: open it with ``server/discover`` (the 2026-07-28 protocol, mcp 2.x) instead of
    ``initialize``; by default as ``FUNCTIONLAYER_TEST_MCP_ERA`` says."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "functionlayer_mcp._cli", *args], env=env
    )
    with errlog.open("a") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            if MODERN if modern is None else modern:
                await _discover(session)
            else:
                await session.initialize()
            yield session


async def _discover(session: ClientSession) -> None:
    """``server/discover`` (mcp 2.x), asked again when it times out: the SDK gives it 10 s,
    less than a loaded CI machine may need to start the gateway and its upstream."""
    from mcp.shared.exceptions import MCPError

    for attempt in range(3):
        try:
            await session.discover()  # type: ignore[attr-defined]
            return
        except MCPError as exc:
            if attempt == 2 or "timed out" not in str(exc):
                raise


@contextlib.asynccontextmanager
async def gateway(
    config: Path,
    env: dict[str, str],
    errlog: Path,
    *,
    upstream: list[str] | None = None,
    modern: bool | None = None,
) -> AsyncIterator[ClientSession]:
    """The gateway in front of the bank server (or ``upstream`` options, e.g. ``--url``)."""
    args = ["proxy", "--config", str(config)]
    args += upstream if upstream is not None else ["--", sys.executable, str(BANK)]
    async with mcp_session(args, env, errlog, modern=modern) as session:
        yield session


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the person ---------------------------------------------------------------------------------


def person_decides(
    server: ServerProcess, action: str, *, timeout: float = 30.0, **form: str
) -> str:
    """A person logs in to the web inbox, waits for the one pending request, and decides it.

    ``action`` is the inbox form's: ``approve``, ``reject`` (``feedback=``), ``edit``
    (``edited_kwargs=`` JSON) or ``respond`` (``response=``). Returns the decided call id. This is
    the only place where tests decide: adapt it when the inbox changes.
    """
    with httpx.Client(base_url=server.base_url, timeout=10.0) as person:
        log_in(person, PERSON, PASSWORD)
        deadline = time.monotonic() + timeout
        while True:
            page = person.get("/inbox")
            assert page.status_code == 200, page.text
            pending = [html.unescape(m) for m in PENDING_RE.findall(page.text)]
            if pending:
                break
            assert time.monotonic() < deadline, "no request reached the inbox"
            time.sleep(0.1)
        assert len(pending) == 1, f"expected one pending request, found {pending}"
        call_id = pending[0]
        decide_in_inbox(person, call_id, {"action": action, **form})
        return call_id


def stored_call(server: ServerProcess, call_id: str) -> dict[str, Any]:
    """The request as the server holds it (read with the agent's token)."""
    with server.client() as client:
        response = client.get(f"/function_calls/{quote(call_id, safe='')}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def pending_ids(server: ServerProcess) -> list[str]:
    with server.client() as client:
        response = client.get("/function_calls", params={"pending": "true"})
        response.raise_for_status()
        return [item["call_id"] for item in response.json()["items"]]


def person_approves_late(server: ServerProcess, call_id: str) -> int:
    """A person logs in and approves ``call_id`` from its detail page, whatever its state;
    the status code of the form's answer."""
    with httpx.Client(base_url=server.base_url, timeout=10.0) as person:
        log_in(person, PERSON, PASSWORD)
        path = "/inbox/calls/" + quote(call_id, safe="")
        page = person.get(path)
        decided = person.post(path, data={"action": "approve", "csrf_token": csrf_of(page.text)})
        return decided.status_code


def audit_actions(server: ServerProcess, call_id: str) -> list[str]:
    with server.client() as client:
        response = client.get(f"/function_calls/{quote(call_id, safe='')}/audit")
        response.raise_for_status()
        return [entry["action"] for entry in response.json()["items"]]
