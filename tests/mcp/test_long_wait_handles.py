"""The 2026-07-28 protocol's long wait, from a hostile client's side: the ``requestState`` the
gateway hands out with ``InputRequiredResult`` is unguessable, known to the session it was handed
to only, for that tool and those arguments, and redeemed once. Nothing a client echoes back can
resume another session's approval, resume an approval for other arguments, or run a call twice.

Real parts: mcp 2.x client sessions (``server/discover``) -> gateway subprocess -> FastMCP
upstream, FunctionLayer server on SQLite, the person in the web inbox. mcp 1.x has no such
protocol: the module is skipped there (scripts/test-mcp2.sh runs it).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from functionlayer_mcp._compat import MCP_MAJOR, field
from mcp import ClientSession, types

from tests._support.servers import ServerProcess
from tests.mcp.conftest import (
    gateway,
    pending_ids,
    person_decides,
    received,
    server_env,
    write_config,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(MCP_MAJOR < 2, reason="the 2026-07-28 protocol needs the mcp SDK 2.x"),
]

CONFIG = """
[approval]
backend = "server"
hold_seconds = 0.3

[[gate]]
tools = ["transfer_money"]
"""

ASKED = {"to": "bob", "amount": 900}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "gateway.toml", CONFIG)


async def call(session: ClientSession, arguments: dict[str, Any], state: str | None = None) -> Any:
    return await session.call_tool(
        "transfer_money",
        arguments,
        read_timeout_seconds=timedelta(seconds=10).total_seconds(),
        allow_input_required=True,  # type: ignore[call-overload]
        request_state=state,
    )


def handle_of(result: Any) -> str:
    assert isinstance(result, types.InputRequiredResult), result  # type: ignore[attr-defined]
    assert not result.input_requests
    assert isinstance(result.request_state, str) and len(result.request_state) >= 40
    return result.request_state


def refused(result: Any) -> str:
    assert isinstance(result, types.CallToolResult), result
    assert field(result, "isError") is True
    [block] = result.content
    assert isinstance(block, types.TextContent)
    assert "transfer_money was not run" in block.text
    return block.text


async def test_a_handle_is_redeemed_once_and_the_approval_runs_once(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    env = server_env(fl_server, bank_log)
    async with gateway(config, env, tmp_path / "gw.log", modern=True) as session:
        first = handle_of(await call(session, ASKED))
        second = handle_of(await call(session, ASKED, first))  # still pending: a new handle
        assert second != first
        # The used handle resumes nothing, and says so.
        assert "requestState" in refused(await call(session, ASKED, first))
        (call_id,) = pending_ids(fl_server)
        assert person_decides(fl_server, "approve") == call_id
        done = await call(session, ASKED, second)
        assert isinstance(done, types.CallToolResult) and not field(done, "isError")
        # Replaying the handle that fetched the result runs nothing again.
        refused(await call(session, ASKED, second))
        refused(await call(session, ASKED, first))
    assert received(bank_log) == [{"tool": "transfer_money", "arguments": ASKED}]


async def test_a_handle_for_other_arguments_or_made_up_resumes_nothing(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    env = server_env(fl_server, bank_log)
    async with gateway(config, env, tmp_path / "gw.log", modern=True) as session:
        small = {"to": "bob", "amount": 1}
        handle = handle_of(await call(session, small))
        person_decides(fl_server, "approve")  # the person approved sending 1
        # The same handle on a bigger transfer: refused, and the handle is spent.
        refused(await call(session, {"to": "mallory", "amount": 100000}, handle))
        refused(await call(session, small, handle))
        refused(await call(session, small, "mcp-guessed-handle"))
    assert received(bank_log) == []


async def test_another_session_cannot_redeem_a_handle(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    env = server_env(fl_server, bank_log)
    async with (
        gateway(config, env, tmp_path / "gw-a.log", modern=True) as owner,
        gateway(config, env, tmp_path / "gw-b.log", modern=True) as thief,
    ):
        handle = handle_of(await call(owner, ASKED))
        person_decides(fl_server, "approve")
        refused(await call(thief, ASKED, handle))
        assert received(bank_log) == []
        # The owner's handle still works, once.
        done = await call(owner, ASKED, handle)
        assert isinstance(done, types.CallToolResult) and not field(done, "isError")
    assert received(bank_log) == [{"tool": "transfer_money", "arguments": ASKED}]


async def test_rejected_runs_nothing(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    env = server_env(fl_server, bank_log)
    async with gateway(config, env, tmp_path / "gw.log", modern=True) as session:
        handle = handle_of(await call(session, ASKED))
        person_decides(fl_server, "reject", feedback="No.")
        result = await call(session, ASKED, handle)
        assert isinstance(result, types.CallToolResult) and field(result, "isError") is True
    assert received(bank_log) == []
