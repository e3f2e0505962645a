"""One approval, one execution, through the OpenAI toolset: the model's tool calls come from the
real openai client talking to the scripted model server over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.model import ScriptedModel, tool_call, tool_calls
from functionlayer_openai import tools


def _transfer_tools(human: ScriptedHuman, ran: list[int], *, run_id: str = "run-1") -> Any:
    fl = FunctionLayer(backend=human, run_id=run_id)

    @fl.require_approval()
    def transfer(amount: int) -> str:
        """Move money."""
        ran.append(amount)
        return f"moved {amount}"

    return tools([transfer])


def _tool_calls(model: ScriptedModel) -> Any:
    client = openai.OpenAI(base_url=model.base_url, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "pay 100"}],
        tools=_transfer_tools(ScriptedHuman(), []).definitions,
    )
    return reply.choices[0].message.tool_calls


def test_running_the_same_tool_call_twice_runs_the_body_once() -> None:
    with ScriptedModel([tool_call("transfer", {"amount": 100}, id="call_pay")]) as model:
        calls = _tool_calls(model)
    human, ran = ScriptedHuman([approve()]), []
    toolset = _transfer_tools(human, ran)

    first = toolset.run(calls)
    second = toolset.run(calls)  # the same tool_call_id again (a retried turn)

    assert ran == [100]
    assert first[0] == {"role": "tool", "tool_call_id": "call_pay", "content": "moved 100"}
    content = second[0]["content"]
    assert second[0]["tool_call_id"] == "call_pay"
    assert content.startswith("transfer was not run again: call id call_pay was approved once")
    assert "It returned: 'moved 100'" in content
    assert len(human.requests) == 1  # asked once
    execution = human.get_function_call("call_pay").status.execution  # type: ignore[union-attr]
    assert execution is not None and execution.summary == "'moved 100'"


def test_a_restarted_agent_with_a_new_run_id_does_not_run_it_again() -> None:
    with ScriptedModel([tool_call("transfer", {"amount": 7}, id="call_restart")]) as model:
        calls = _tool_calls(model)
    human, ran = ScriptedHuman([approve()]), []
    _transfer_tools(human, ran, run_id="before-restart").run(calls)
    again = _transfer_tools(human, ran, run_id="after-restart").run(calls)
    assert ran == [7]
    assert "was not run again" in again[0]["content"]


def test_a_reused_tool_call_id_in_one_turn_runs_once_sync_and_async() -> None:
    duplicate = tool_calls(
        tool_call("transfer", {"amount": 5}, id="call_dup"),
        tool_call("transfer", {"amount": 5}, id="call_dup"),
    )
    with ScriptedModel([duplicate, duplicate]) as model:
        calls = _tool_calls(model)
        async_calls = _tool_calls(model)
    assert [c.id for c in calls] == ["call_dup", "call_dup"]

    human, ran = ScriptedHuman([approve()]), []
    results = _transfer_tools(human, ran).run(calls)
    assert ran == [5]
    assert results[0]["content"] == "moved 5"
    assert "was not run again" in results[1]["content"]

    human, ran = ScriptedHuman([approve()]), []
    concurrent = asyncio.run(_transfer_tools(human, ran).arun(async_calls))
    assert ran == [5]
    contents = sorted(r["content"] for r in concurrent)
    assert contents[0] == "moved 5" and "was not run again" in contents[1]
