"""The gateway end to end: mcp client -> gateway subprocess -> FastMCP upstream subprocess, with a
real FunctionLayer server and a person deciding in its web inbox."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from functionlayer import _feedback
from functionlayer_mcp._compat import MCP_MAJOR, field
from mcp import types

from tests._support.servers import ServerProcess, free_port
from tests.mcp.conftest import (
    BANK,
    gateway,
    mcp_session,
    pending_ids,
    person_decides,
    received,
    server_env,
    stored_call,
    write_config,
)

pytestmark = pytest.mark.anyio

T = TypeVar("T")

CLI = [sys.executable, "-m", "functionlayer_mcp._cli"]

CONFIG = """
[approval]
backend = "server"

[[gate]]
tools = ["transfer_*"]
when.amount = { gt = 100 }
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "gateway.toml", CONFIG)


async def while_person(
    call: Callable[[], Awaitable[T]], decide: Callable[[], str]
) -> tuple[T, str]:
    """Run the MCP call while a person decides in another thread; (result, decided call id)."""
    box: dict[str, Any] = {}

    async def run_call() -> None:
        box["result"] = await call()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_call)
        call_id = await anyio.to_thread.run_sync(decide)
    return box["result"], call_id


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_tools_are_listed_unchanged(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    env = server_env(fl_server, bank_log)
    async with mcp_session(
        ["proxy", "--", sys.executable, str(BANK)], env, tmp_path / "a.log"
    ) as s:
        # No configuration at all: a plain proxy.
        plain = (await s.list_tools()).tools
    async with gateway(config, env, tmp_path / "gw.log") as session:
        listed = (await session.list_tools()).tools
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=[str(BANK)], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as direct:
        await direct.initialize()
        upstream = (await direct.list_tools()).tools

    def shape(tools: list[types.Tool]) -> list[tuple[str, str | None, dict[str, Any]]]:
        return [(t.name, t.description, field(t, "inputSchema")) for t in tools]

    assert shape(listed) == shape(upstream) == shape(plain)
    assert {t.name for t in listed} == {"transfer_money", "read_balance"}


async def test_approved_call_reaches_the_upstream_once_under_the_request_id(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    async with gateway(config, server_env(fl_server, bank_log), tmp_path / "gw.log") as session:
        result, call_id = await while_person(
            lambda: session.call_tool("transfer_money", {"to": "bob", "amount": 500}),
            lambda: person_decides(fl_server, "approve"),
        )
    assert field(result, "isError") is False
    assert text_of(result) == "sent 500 to bob"
    assert received(bank_log) == [
        {"tool": "transfer_money", "arguments": {"to": "bob", "amount": 500}}
    ]
    # mcp-<64 random bits>-<JSON-RPC id>: initialize is request 0, this call request 1 (mcp 2.x
    # clients list the tools first, to validate results: request 2).
    assert re.fullmatch(rf"mcp-[0-9a-f]{{16}}-{MCP_MAJOR}", call_id), call_id
    stored = stored_call(fl_server, call_id)
    assert stored["spec"]["fn"] == "transfer_money"
    assert stored["spec"]["kwargs"] == {"to": "bob", "amount": 500}
    assert stored["spec"]["description"] == "Transfer money to an account."
    assert stored["status"]["approved"] is True
    assert stored["status"]["responded_by"] == "alice"
    # One approval, one execution: claimed before forwarding, the upstream's answer reported.
    execution = stored["status"]["execution"]
    assert (execution["outcome"], execution["summary"]) == ("returned", "sent 500 to bob")
    assert execution["claimed_by"] == "mcp-" + call_id.split("-")[1]


async def test_rejection_returns_the_feedback_as_a_tool_error_and_nothing_runs(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    feedback = "Too much for one transfer; send 50 and ask again."
    async with gateway(config, server_env(fl_server, bank_log), tmp_path / "gw.log") as session:
        result, _ = await while_person(
            lambda: session.call_tool("transfer_money", {"to": "mallory", "amount": 5000}),
            lambda: person_decides(fl_server, "reject", feedback=feedback),
        )
    assert field(result, "isError") is True
    assert text_of(result) == _feedback.rejection_message("transfer_money", feedback)
    assert feedback in text_of(result)
    assert received(bank_log) == []


async def test_edited_arguments_are_what_the_upstream_receives(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    async with gateway(config, server_env(fl_server, bank_log), tmp_path / "gw.log") as session:
        result, _ = await while_person(
            lambda: session.call_tool("transfer_money", {"to": "bob", "amount": 500}),
            lambda: person_decides(fl_server, "edit", edited_kwargs='{"to": "bob", "amount": 50}'),
        )
        assert received(bank_log) == [
            {"tool": "transfer_money", "arguments": {"to": "bob", "amount": 50}}
        ]
        assert field(result, "isError") is False
        assert text_of(result) == _feedback.edited_message(
            "transfer_money",
            {"to": "bob", "amount": 500},
            {"to": "bob", "amount": 50},
            "sent 50 to bob",
        )

        # Edits that do not fit the tool's input schema run nothing (a partial edit merges into
        # the proposed arguments, so the wrong type is what makes this one invalid).
        result, _ = await while_person(
            lambda: session.call_tool("transfer_money", {"to": "bob", "amount": 500}),
            lambda: person_decides(fl_server, "edit", edited_kwargs='{"amount": "fifty"}'),
        )
    assert field(result, "isError") is True
    assert text_of(result).startswith(
        "transfer_money was not run: the human approved it with edited"
    )
    assert "'fifty' is not of type 'number'" in text_of(result)
    assert len(received(bank_log)) == 1


async def test_expiry_fails_closed(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        '[approval]\nbackend = "server"\n\n[[gate]]\ntools = ["transfer_money"]\n'
        "timeout_seconds = 1.5\n",
    )
    async with gateway(config, server_env(fl_server, bank_log), tmp_path / "gw.log") as session:
        started = time.monotonic()
        result = await session.call_tool("transfer_money", {"to": "bob", "amount": 1})
        elapsed = time.monotonic() - started
    assert field(result, "isError") is True
    assert text_of(result) == _feedback.expired_message("transfer_money", 1.5)
    assert 1.4 < elapsed < 15
    assert received(bank_log) == []
    assert pending_ids(fl_server) == []  # expired for good at the server, not left pending


async def test_ungated_calls_pass_straight_through(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    async with gateway(config, server_env(fl_server, bank_log), tmp_path / "gw.log") as session:
        balance = await session.call_tool("read_balance", {"account": "acme"})
        # Gated tool, but its `when` rule does not hold (amount <= 100): no human asked.
        small = await session.call_tool("transfer_money", {"to": "bob", "amount": 20})
    assert text_of(balance) == "acme: 1000"
    assert text_of(small) == "sent 20 to bob"
    assert received(bank_log) == [
        {"tool": "read_balance", "arguments": {"account": "acme"}},
        {"tool": "transfer_money", "arguments": {"to": "bob", "amount": 20}},
    ]
    assert pending_ids(fl_server) == []


async def test_no_decision_fails_closed(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    env = server_env(fl_server, bank_log, FUNCTIONLAYER_API_TOKEN="not-a-token")
    async with gateway(config, env, tmp_path / "gw.log") as session:
        result = await session.call_tool("transfer_money", {"to": "bob", "amount": 500})
    assert field(result, "isError") is True
    assert text_of(result).startswith(
        "transfer_money was not run: could not get a human decision ("
    )
    assert received(bank_log) == []


async def test_the_upstream_does_not_get_the_functionlayer_token(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\ntry:\n    from mcp.server.fastmcp import FastMCP\n"
        "except ImportError:\n    from mcp.server.mcpserver import MCPServer as FastMCP\n"
        "app = FastMCP('probe', log_level='WARNING')\n"
        "@app.tool()\ndef env(name: str) -> str:\n    return os.environ.get(name, '<unset>')\n"
        "app.run('stdio')\n"
    )
    config = write_config(tmp_path / "gateway.toml", '[approval]\nbackend = "server"\n')
    env = server_env(fl_server, bank_log)
    async with gateway(
        config, env, tmp_path / "gw.log", upstream=["--", sys.executable, str(probe)]
    ) as session:
        token = await session.call_tool("env", {"name": "FUNCTIONLAYER_API_TOKEN"})
        log = await session.call_tool("env", {"name": "BANK_LOG"})
    assert text_of(token) == "<unset>"
    assert text_of(log) == str(bank_log)


# -- a streamable-HTTP upstream ---------------------------------------------------------------


@pytest.fixture
def http_bank(bank_log: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with (tmp_path / "bank-http.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(BANK), "--http", str(port)],
            env={**server_env_base(), "BANK_LOG": str(bank_log)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "bank-http.log").read_text()
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the HTTP upstream did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait()


def server_env_base() -> dict[str, str]:
    return dict(os.environ)


async def test_streamable_http_upstream(
    fl_server: ServerProcess, config: Path, bank_log: Path, http_bank: str, tmp_path: Path
) -> None:
    env = server_env(fl_server, tmp_path / "unused.jsonl")
    async with gateway(config, env, tmp_path / "gw.log", upstream=["--url", http_bank]) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        result, _ = await while_person(
            lambda: session.call_tool("transfer_money", {"to": "carol", "amount": 700}),
            lambda: person_decides(fl_server, "reject", feedback="Not to carol."),
        )
        approved, _ = await while_person(
            lambda: session.call_tool("transfer_money", {"to": "dave", "amount": 300}),
            lambda: person_decides(fl_server, "approve"),
        )
    assert names == {"transfer_money", "read_balance"}
    assert text_of(result) == _feedback.rejection_message("transfer_money", "Not to carol.")
    assert text_of(approved) == "sent 300 to dave"
    assert received(bank_log) == [
        {"tool": "transfer_money", "arguments": {"to": "dave", "amount": 300}}
    ]


# -- start-up errors ----------------------------------------------------------------------------


def test_terminal_backend_without_a_terminal_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml", '[approval]\nbackend = "terminal"\n[[gate]]\ntools = ["*"]\n'
    )
    done = subprocess.run(
        [*CLI, "proxy", "--config", str(config), "--", sys.executable, str(BANK)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
    )
    assert done.returncode == 2
    assert done.stdout == ""  # stdout is the MCP stream: nothing else may go there
    assert "/dev/tty cannot be opened" in done.stderr
    assert "FUNCTIONLAYER_API_BASE" in done.stderr


def test_a_bad_configuration_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        '[[gate]]\ntools = ["transfer_money"]\nwhen.amount = { gtt = 1 }\n',
    )
    done = subprocess.run(
        [*CLI, "proxy", "--config", str(config), "--", sys.executable, str(BANK)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "gate.0.when.amount.gtt" in done.stderr


async def test_a_cancelled_call_is_withdrawn_and_never_runs(
    fl_server: ServerProcess, config: Path, bank_log: Path, tmp_path: Path
) -> None:
    from mcp.shared import exceptions

    McpError = getattr(exceptions, "McpError", None) or exceptions.MCPError  # 2.x: MCPError

    outcome: dict[str, Any] = {}
    async with gateway(config, server_env(fl_server, bank_log), tmp_path / "gw.log") as session:

        async def call() -> None:
            try:
                outcome["result"] = await session.call_tool(
                    "transfer_money", {"to": "bob", "amount": 900}
                )
            except McpError as exc:
                outcome["error"] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            with anyio.fail_after(30):
                while not (waiting := pending_ids(fl_server)):
                    await anyio.sleep(0.1)
            if MCP_MAJOR >= 2:
                # A 2.x client withdraws a call when its caller stops waiting: it sends
                # notifications/cancelled itself (and the server never answers the call).
                tg.cancel_scope.cancel()
                outcome["error"] = "cancelled"
            else:
                # The client withdraws the call (its JSON-RPC id ends the call id) while a person
                # is being asked.
                request_id = int(waiting[0].rsplit("-", 1)[1])
                cancel = types.CancelledNotification(
                    params=types.CancelledNotificationParams(
                        requestId=request_id, reason="user stop"
                    )
                )
                await session.send_notification(types.ClientNotification(cancel))
        assert "error" in outcome and "cancelled" in str(outcome["error"]).lower()
        with anyio.fail_after(30):
            while not stored_call(fl_server, waiting[0])["status"]["expired"]:
                await anyio.sleep(0.1)
    assert stored_call(fl_server, waiting[0])["status"]["approved"] is False
    assert pending_ids(fl_server) == []
    assert received(bank_log) == []
