"""Adapter behaviour the guarantee depends on, beyond the shared suite: a decision belongs to
one tool call only, and an approved function's own failure is never disguised as a result."""

from __future__ import annotations

from typing import Any

import pytest
from functionlayer import FunctionLayer
from functionlayer._feedback import rejection_message
from functionlayer.testing import ScriptedHuman, approve, reject
from functionlayer_langchain import tool as langchain_tool
from functionlayer_openai import tools as openai_tools


def _guarded_multiply(human: ScriptedHuman, ran: list[tuple[int, int]]) -> Any:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        ran.append((x, y))
        return x * y

    return multiply


# -- LangChain: the tool call id of one call never carries over to the next ----------------------


def test_langchain_plain_invocation_after_a_tool_call_is_asked_afresh() -> None:
    human = ScriptedHuman([approve(), reject("not again")])
    ran: list[tuple[int, int]] = []
    multiply = langchain_tool(_guarded_multiply(human, ran))

    approved = multiply.invoke(
        {"type": "tool_call", "id": "call_first", "name": "multiply", "args": {"x": 2, "y": 3}}
    )
    assert approved.content == "6"
    # A later call without a tool call id is a new request: the human is asked again (and says
    # no), rather than the first call's approval being reused.
    second = multiply.invoke({"x": 2, "y": 3})

    assert second == rejection_message("multiply", "not again")
    assert ran == [(2, 3)]
    first, fresh = (r.call_id for r in human.function_call_requests)
    assert first == "call_first" and fresh != "call_first"


@pytest.mark.anyio
async def test_langchain_async_plain_invocation_after_a_tool_call_is_asked_afresh() -> None:
    human = ScriptedHuman([approve(), reject("not again")])
    ran: list[tuple[int, int]] = []
    multiply = langchain_tool(_guarded_multiply(human, ran))

    approved = await multiply.ainvoke(
        {"type": "tool_call", "id": "call_first", "name": "multiply", "args": {"x": 2, "y": 3}}
    )
    assert approved.content == "6"
    second = await multiply.ainvoke({"x": 2, "y": 3})

    assert second == rejection_message("multiply", "not again")
    assert ran == [(2, 3)]
    first, fresh = (r.call_id for r in human.function_call_requests)
    assert first == "call_first" and fresh != "call_first"


# -- OpenAI: an approved function's exception propagates from the sync runners -------------------


def _divide_toolset(human: ScriptedHuman) -> Any:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int) -> float:
        """Divide x by y."""
        return x / y

    return openai_tools([divide])


def test_openai_sync_run_lets_an_approved_functions_exception_propagate() -> None:
    human = ScriptedHuman([approve()])
    toolset = _divide_toolset(human)
    call = {"id": "call_zero", "function": {"name": "divide", "arguments": '{"x": 1, "y": 0}'}}

    with pytest.raises(ZeroDivisionError):
        toolset.run([call])
    assert [r.call_id for r in human.function_call_requests] == ["call_zero"]


def test_openai_sync_responses_run_lets_an_approved_functions_exception_propagate() -> None:
    human = ScriptedHuman([approve()])
    toolset = _divide_toolset(human)
    item = {
        "type": "function_call",
        "call_id": "call_zero",
        "name": "divide",
        "arguments": '{"x": 1, "y": 0}',
    }

    with pytest.raises(ZeroDivisionError):
        toolset.run_responses([item])
