"""What the gateway gates, through the real ``mcp`` SDK: the red-team's MCP findings.

- A gate on a nested argument (``target.region``) reads the nested object the upstream acts on;
  a flat key literally named ``"target.region"`` cannot make the gateway see another value.
- A gate that names no tool of the upstream (a typo) stops the gateway at start-up.
- A tool the upstream adds after start-up is gated by default.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest
from functionlayer import _feedback
from functionlayer_mcp._compat import MCP_MAJOR, field, send
from mcp import types

from tests._support.servers import ServerProcess
from tests.mcp.conftest import (
    BANK,
    HERE,
    gateway,
    pending_ids,
    received,
    server_env,
    write_config,
)

pytestmark = pytest.mark.anyio

DEPLOY = HERE / "deploy_server.py"
CLI = [sys.executable, "-m", "functionlayer_mcp._cli"]

CONFIG = """
[approval]
backend = "server"
timeout_seconds = 2

[[gate]]
tools = ["deploy"]
when."target.region" = { glob = "eu-*" }
"""


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_a_flat_dotted_key_cannot_evade_a_gate_on_the_nested_argument(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gateway.toml", CONFIG)
    env = server_env(fl_server, bank_log)
    upstream = ["--", sys.executable, str(DEPLOY)]
    async with gateway(config, env, tmp_path / "gw.log", upstream=upstream) as session:
        # The upstream acts on target.region = eu-west-1; the decoy key says us-east-1.
        evasion = await session.call_tool(
            "deploy",
            {"env": "prod", "target": {"region": "eu-west-1"}, "target.region": "us-east-1"},
        )
        assert received(bank_log) == [], "the upstream acted on an ungated call"
        assert field(evasion, "isError") is True
        assert text_of(evasion).startswith("deploy was not run: ")
        assert (
            "the arguments do not match the tool's input schema: it does not declare the key(s) "
            "'target.region')" in text_of(evasion)
        )
        assert pending_ids(fl_server) == []  # refused without asking anyone

        # The same decoy one level down is refused too.
        nested = await session.call_tool(
            "deploy", {"env": "prod", "target": {"region": "eu-west-1", "region.x": "us"}}
        )
        assert field(nested, "isError") is True
        assert "does not declare the key(s) 'target' / 'region.x')" in text_of(nested)

        # Honest calls: outside the gate it runs at once, inside it a person is asked.
        us = await session.call_tool("deploy", {"env": "prod", "target": {"region": "us-east-1"}})
        eu = await session.call_tool("deploy", {"env": "prod", "target": {"region": "eu-west-1"}})
    assert text_of(us) == "deployed prod to us-east-1"
    assert field(eu, "isError") is True
    assert text_of(eu) == _feedback.expired_message("deploy", 2)
    assert received(bank_log) == [
        {
            "tool": "deploy",
            "arguments": {"env": "prod", "target": {"region": "us-east-1", "cluster": "main"}},
        }
    ]


async def test_a_tool_added_after_start_up_is_gated(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gateway.toml", CONFIG)
    env = server_env(fl_server, bank_log)
    errlog = tmp_path / "gw.log"
    upstream = ["--", sys.executable, str(DEPLOY)]
    async with gateway(config, env, errlog, upstream=upstream) as session:
        before = {t.name for t in (await session.list_tools()).tools}
        enabled = await session.call_tool("enable_rollback", {})  # no gate names it: runs
        after = {t.name for t in (await session.list_tools()).tools}
        rollback = await session.call_tool("rollback", {"env": "prod"})
        unknown = await session.call_tool("drop_everything", {})
    assert (before, after - before) == ({"deploy", "pay", "enable_rollback"}, {"rollback"})
    assert text_of(enabled) == "rollback enabled"
    # No gate names rollback, but the configuration was checked against the start-up list:
    # a person is asked (nobody answers here, so it expires) and the upstream never runs it.
    assert field(rollback, "isError") is True
    assert text_of(rollback) == _feedback.expired_message("rollback", 2)
    assert field(unknown, "isError") is True
    assert text_of(unknown) == _feedback.not_run_message(
        "drop_everything", "the upstream lists no tool by this name"
    )
    assert received(bank_log) == [{"tool": "enable_rollback", "arguments": {}}]
    assert "'rollback' appeared after start-up: every call to it is gated" in errlog.read_text()


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        (
            '["transfer_mony"]',
            "gate 0: 'transfer_mony' matches no tool of the upstream "
            "(did you mean 'transfer_money'?)",
        ),
        ('["read_balance", "transfr_*"]', "gate 0: 'transfr_*' matches no tool of the upstream"),
        (
            '["transfer_money"]\nwhen.ammount = { exists = true }',
            "gate 0: when 'ammount' is not an argument of 'transfer_money' (did you mean 'amount'?)",
        ),
    ],
)
def test_a_gate_naming_no_tool_stops_the_gateway(tools: str, expected: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml", f'[approval]\nbackend = "server"\n[[gate]]\ntools = {tools}\n'
    )
    env = {
        **server_env_base(),
        "FUNCTIONLAYER_API_BASE": "http://127.0.0.1:9/functionlayer/v1",
        "FUNCTIONLAYER_API_TOKEN": "unused",
        "BANK_LOG": str(tmp_path / "bank.jsonl"),
    }
    done = subprocess.run(
        [*CLI, "proxy", "--config", str(config), "--", sys.executable, str(BANK)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert expected in done.stderr
    assert "The upstream lists: 'read_balance', 'transfer_money'." in done.stderr


def server_env_base() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_API_")}


def test_nan_cannot_slip_past_a_numeric_gate(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    """NaN is not JSON, but the mcp SDK parses it; NaN > 100 is false, and the upstream would pay
    "everything" (it receives null). With mcp 1.x the gateway's handler sees null, which no
    numeric condition can judge: a person is asked. With 2.x it sees NaN, and refuses the call
    outright (no request can record it). Sent as raw JSON-RPC, since the SDK client cannot send
    it."""
    config = write_config(
        tmp_path / "gateway.toml",
        '[approval]\nbackend = "server"\ntimeout_seconds = 2\n'
        '[[gate]]\ntools = ["pay"]\nwhen.amount = { gt = 100 }\n',
    )
    with (tmp_path / "gw.log").open("w") as errlog:
        proc = subprocess.Popen(
            [*CLI, "proxy", "--config", str(config), "--", sys.executable, str(DEPLOY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=server_env(fl_server, bank_log),
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        _send(
            proc.stdin,
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            },
        )
        assert _receive(proc.stdout)["id"] == 0
        _send(proc.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        proc.stdin.write(
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
            b'{"name": "pay", "arguments": {"to": "mallory", "amount": NaN}}}\n'
        )
        proc.stdin.flush()
        answer = _receive(proc.stdout)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert received(bank_log) == [], "the upstream acted on an ungated call"
    assert answer["id"] == 1
    assert answer["result"]["isError"] is True
    if MCP_MAJOR < 2:
        assert answer["result"]["content"][0]["text"] == _feedback.expired_message("pay", 2)
    else:
        reason = "the arguments hold a number JSON cannot carry (NaN or Infinity)"
        assert answer["result"]["content"][0]["text"] == _feedback.not_run_message("pay", reason)


def _send(stream: IO[bytes], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def _receive(stream: IO[bytes], timeout: float = 30.0) -> dict[str, Any]:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the gateway did not answer"
    message: dict[str, Any] = json.loads(stream.readline())
    return message


async def test_only_the_judged_call_reaches_the_upstream(
    fl_server: ServerProcess, bank_log: Path, tmp_path: Path
) -> None:
    """Fields a client adds to a call's params beside name and arguments are not forwarded for a
    tool a gate names: the upstream gets what the gate judged, nothing the person did not see."""
    config = write_config(
        tmp_path / "gateway.toml",
        '[approval]\nbackend = "server"\n[[gate]]\ntools = ["transfer_money"]\n'
        "when.amount = { gt = 100 }\n",
    )
    upstream = ["--", sys.executable, str(HERE / "raw_server.py")]
    env = server_env(fl_server, bank_log)
    async with gateway(config, env, tmp_path / "gw.log", upstream=upstream) as session:
        params = types.CallToolRequestParams.model_validate(
            {
                "name": "transfer_money",
                "arguments": {"to": "bob", "amount": 20},
                "amount": 5000,
                "to": "mallory",
            }
        )
        result = await send(session, types.CallToolRequest, params, types.CallToolResult)
    assert text_of(result) == "done"
    assert received(bank_log) == [
        {"params": {"name": "transfer_money", "arguments": {"to": "bob", "amount": 20}}}
    ]
