"""``functionlayer-mcp permission-prompt`` through the real ``mcp`` client: the exact answer shape
of the permission-prompt contract, with a person deciding in the web inbox of a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from functionlayer import _feedback
from functionlayer_mcp._compat import field
from mcp import types

from tests._support.servers import ServerProcess
from tests.mcp.conftest import mcp_session, person_decides, server_env, stored_call

pytestmark = pytest.mark.anyio

ARGS = ["permission-prompt", "--backend", "server", "--timeout", "60"]


async def ask_permission(
    session: Any, server: ServerProcess, arguments: dict[str, Any], action: str, **form: str
) -> tuple[types.CallToolResult, str]:
    box: dict[str, Any] = {}

    async def call() -> None:
        box["result"] = await session.call_tool("request_permission", arguments)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        call_id = await anyio.to_thread.run_sync(lambda: person_decides(server, action, **form))
    return box["result"], call_id


def answer(result: types.CallToolResult) -> Any:
    assert field(result, "isError") is False
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return json.loads(block.text)


async def test_request_permission_allow_edit_deny(fl_server: ServerProcess, tmp_path: Path) -> None:
    env = server_env(fl_server, tmp_path / "unused.jsonl")
    async with mcp_session(ARGS, env, tmp_path / "pp.log") as session:
        tools = (await session.list_tools()).tools
        assert [t.name for t in tools] == ["request_permission"]
        assert field(tools[0], "inputSchema")["required"] == ["tool_name", "input"]

        allowed, call_id = await ask_permission(
            session,
            fl_server,
            {
                "tool_name": "Bash",
                "input": {"command": "rm -rf build"},
                "tool_use_id": "toolu_01Allow",
            },
            "approve",
        )
        assert answer(allowed) == {
            "behavior": "allow",
            "updatedInput": {"command": "rm -rf build"},
        }
        assert call_id == "toolu_01Allow"  # the tool use id is the approval's call id
        stored = stored_call(fl_server, "toolu_01Allow")
        assert stored["spec"]["fn"] == "Bash"
        assert stored["spec"]["kwargs"] == {"command": "rm -rf build"}

        edited, _ = await ask_permission(
            session,
            fl_server,
            {
                "tool_name": "Write",
                "input": {"file_path": "/tmp/a.txt", "content": "hi"},
                "tool_use_id": "toolu_01Edit",
            },
            "edit",
            edited_kwargs='{"file_path": "/tmp/b.txt", "content": "hi"}',
        )
        assert answer(edited) == {
            "behavior": "allow",
            "updatedInput": {"file_path": "/tmp/b.txt", "content": "hi"},
        }

        feedback = "Never delete the repository; clean build/ with make clean."
        denied, _ = await ask_permission(
            session,
            fl_server,
            {"tool_name": "Bash", "input": {"command": "rm -rf ."}, "tool_use_id": "toolu_01Deny"},
            "reject",
            feedback=feedback,
        )
        assert answer(denied) == {
            "behavior": "deny",
            "message": _feedback.rejection_message("Bash", feedback),
        }


async def test_request_permission_expiry_denies(fl_server: ServerProcess, tmp_path: Path) -> None:
    env = server_env(fl_server, tmp_path / "unused.jsonl")
    args = ["permission-prompt", "--backend", "server", "--timeout", "1"]
    async with mcp_session(args, env, tmp_path / "pp.log") as session:
        result = await session.call_tool(
            "request_permission",
            {"tool_name": "Bash", "input": {"command": "ls"}, "tool_use_id": "toolu_01Late"},
        )
    assert answer(result) == {
        "behavior": "deny",
        "message": _feedback.expired_message("Bash", 1),
    }
    assert stored_call(fl_server, "toolu_01Late")["status"]["expired"] is True


async def test_the_same_tool_use_id_is_allowed_once(
    fl_server: ServerProcess, tmp_path: Path
) -> None:
    """An approval authorises one execution: asking again about the same tool use (a replayed
    transcript, a retried prompt) is denied with "already ran" instead of allowed again."""
    env = server_env(fl_server, tmp_path / "unused.jsonl")
    request = {
        "tool_name": "Bash",
        "input": {"command": "make deploy"},
        "tool_use_id": "toolu_Once",
    }
    async with mcp_session(ARGS, env, tmp_path / "pp.log") as session:
        allowed, _ = await ask_permission(session, fl_server, request, "approve")
        assert answer(allowed) == {"behavior": "allow", "updatedInput": {"command": "make deploy"}}
        again = answer(await session.call_tool("request_permission", request))
    assert again["behavior"] == "deny"
    assert again["message"].startswith(
        "Bash was not run again: call id toolu_Once was approved once and already ran"
    ), again
    execution = stored_call(fl_server, "toolu_Once")["status"]["execution"]
    assert execution["started_at"] is not None and execution["outcome"] is None
