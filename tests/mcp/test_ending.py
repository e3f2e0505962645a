"""When the gateway (or the permission-prompt tool) ends while a call waits for a person, the
request is abandoned on the server, once, and a late approval runs nothing: stopped by SIGINT or
SIGTERM, or because its MCP client went away (stdin closed). A call the gateway holds between
the client's retries (``hold_seconds``) stays pending while the gateway lives. Real parts: the
``mcp`` client SDK starting the gateway as a subprocess, the FastMCP upstream, a FunctionLayer
server on SQLite, the person in the web inbox."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from functionlayer_mcp._compat import MCP_MAJOR
from mcp import ClientSession

from tests._support.servers import ServerProcess
from tests.mcp.conftest import (
    audit_actions,
    gateway,
    mcp_session,
    pending_ids,
    person_approves_late,
    received,
    server_env,
    stored_call,
    write_config,
)

pytestmark = pytest.mark.anyio

CONFIG = """
[approval]
backend = "server"

[[gate]]
tools = ["transfer_money"]
"""

HELD = """
[approval]
backend = "server"
hold_seconds = 3

[[gate]]
tools = ["transfer_money"]
"""

EXIT_WITHIN = 5.0


def _child_running(marker: str) -> int:
    """The pid of this process's child whose command line holds ``marker``."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and marker.encode() in cmdline:
            return int(entry)
    raise AssertionError(f"no child process running {marker}")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


async def _wait_pending(server: ServerProcess, known: set[str]) -> str:
    deadline = time.monotonic() + 60
    while True:
        fresh = [i for i in await anyio.to_thread.run_sync(pending_ids, server) if i not in known]
        if fresh:
            await anyio.sleep(0.5)  # its long-poll starts right after the create
            return fresh[0]
        assert time.monotonic() < deadline, "the call never reached the server"
        await anyio.sleep(0.1)


async def _call_quietly(session: ClientSession, name: str, arguments: dict[str, Any]) -> None:
    """A tools/call whose answer never comes (the server process ends under it)."""
    with contextlib.suppress(Exception):
        await session.call_tool(name, arguments)


def _assert_abandoned_once(
    server: ServerProcess, call_id: str, log: Path | None, gateway_log: Path | None = None
) -> None:
    """``gateway_log``: the gateway's standard error, shown when this fails (what it said)."""
    said = gateway_log.read_text() if gateway_log is not None and gateway_log.exists() else ""
    status = stored_call(server, call_id)["status"]
    assert status["abandoned_at"] and status["approved"] is False, (status, said)
    assert audit_actions(server, call_id).count("abandoned") == 1, said
    assert person_approves_late(server, call_id) != 303  # refused: nothing to approve
    status = stored_call(server, call_id)["status"]
    assert status["approved"] is False and status["abandoned_at"], status
    assert log is None or received(log) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_gateway_and_abandons_the_waiting_call(
    signum: signal.Signals, fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gateway.toml", CONFIG)
    errlog = tmp_path / "gateway.log"
    known = set(pending_ids(fl_server))
    with contextlib.suppress(Exception):  # the client's streams break under it
        async with gateway(config, server_env(fl_server, bank_log), errlog) as session:
            pid = _child_running("functionlayer_mcp._cli")
            async with anyio.create_task_group() as tg:
                arguments = {"to": "mallory", "amount": 5000}
                tg.start_soon(_call_quietly, session, "transfer_money", arguments)
                call_id = await _wait_pending(fl_server, known)
                os.kill(pid, signum)
                sent = time.monotonic()
                while not _gone(pid) and time.monotonic() - sent < EXIT_WITHIN + 5:
                    await anyio.sleep(0.05)
                took = time.monotonic() - sent
                tg.cancel_scope.cancel()
    _assert_abandoned_once(fl_server, call_id, bank_log, errlog)
    assert took < EXIT_WITHIN, (took, errlog.read_text())
    log = errlog.read_text()
    assert (
        f"stopping ({signum.name}): 1 request(s) still waiting for a person; "
        "1 marked abandoned on the server"
    ) in log, log
    assert "Traceback" not in log, log


@pytest.mark.skipif(
    MCP_MAJOR >= 2,
    reason="the mcp 2.x client sends notifications/cancelled when its session closes, which "
    "expires that one call by design; a client leaving without a word is the 1.x client's way",
)
async def test_the_client_going_away_abandons_the_waiting_call(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gateway.toml", CONFIG)
    errlog = tmp_path / "gateway.log"
    known = set(pending_ids(fl_server))
    async with (
        gateway(config, server_env(fl_server, bank_log), errlog) as session,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(_call_quietly, session, "transfer_money", {"to": "x", "amount": 1})
        call_id = await _wait_pending(fl_server, known)
        tg.cancel_scope.cancel()  # the client sends no cancellation: it just leaves
    # leaving the session closed the gateway's stdin
    deadline = time.monotonic() + 10
    while "stopping" not in errlog.read_text() and time.monotonic() < deadline:
        await anyio.sleep(0.1)
    _assert_abandoned_once(fl_server, call_id, bank_log)
    log = errlog.read_text()
    assert (
        "stopping (the client went away): 1 request(s) still waiting for a person; "
        "1 marked abandoned on the server"
    ) in log, log


@pytest.mark.skipif(
    MCP_MAJOR >= 2,
    reason="drives the 1.x client's call-again loop; under the mcp 2.x SDK a held call is an "
    "input-required result, covered by test_long_wait_handles.py",
)
async def test_a_held_call_stays_pending_until_the_gateway_ends(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gateway.toml", HELD)
    errlog = tmp_path / "gateway.log"
    known = set(pending_ids(fl_server))
    async with gateway(config, server_env(fl_server, bank_log), errlog) as session:
        result = await session.call_tool("transfer_money", {"to": "x", "amount": 2})
        assert result.isError  # held: "has not run: ... Call it again to keep waiting"
        [call_id] = [i for i in pending_ids(fl_server) if i not in known]
        await anyio.sleep(1.0)  # the client's request ended; the gateway keeps the request
        assert call_id in pending_ids(fl_server)
        assert "abandoned" not in audit_actions(fl_server, call_id)
    deadline = time.monotonic() + 10
    while not stored_call(fl_server, call_id)["status"].get("abandoned_at"):
        assert time.monotonic() < deadline, errlog.read_text()
        await anyio.sleep(0.1)
    _assert_abandoned_once(fl_server, call_id, bank_log)


async def test_a_signal_stops_the_permission_prompt_and_abandons_its_request(
    fl_server: ServerProcess, tmp_path: Path
) -> None:
    errlog = tmp_path / "pp.log"
    args = ["permission-prompt", "--backend", "server", "--timeout", "60"]
    env = server_env(fl_server, tmp_path / "unused.jsonl")
    known = set(pending_ids(fl_server))
    with contextlib.suppress(Exception):
        async with mcp_session(args, env, errlog) as session:
            pid = _child_running("functionlayer_mcp._cli")
            async with anyio.create_task_group() as tg:
                arguments = {"tool_name": "Bash", "input": {"command": "rm -rf /"}}
                tg.start_soon(_call_quietly, session, "request_permission", arguments)
                call_id = await _wait_pending(fl_server, known)
                os.kill(pid, signal.SIGINT)
                sent = time.monotonic()
                while not _gone(pid) and time.monotonic() - sent < EXIT_WITHIN + 5:
                    await anyio.sleep(0.05)
                took = time.monotonic() - sent
                tg.cancel_scope.cancel()
    _assert_abandoned_once(fl_server, call_id, None, errlog)
    assert took < EXIT_WITHIN, (took, errlog.read_text())
    assert "stopping (SIGINT): 1 request(s)" in errlog.read_text(), errlog.read_text()
