"""functionlayer_haystack against the shared conformance suite.

Every call goes through Haystack's real ``Agent`` (``run`` for the sync path, ``run_async`` for
the async one) with ``OpenAIChatGenerator`` talking over HTTP to the scripted model, which makes
exactly the tool calls of the case with their ids and then finishes. The result is the tool
message the Agent sent back to the model, so the harness sees what the model sees.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer.testing.model import ScriptedModel, text, tool_call, tool_calls, tool_results
from functionlayer_haystack import _tool as _tool_module
from functionlayer_haystack import tool, tools
from functionlayer_haystack._tool import MESSAGES_PARAMETER
from haystack.components.agents import Agent
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage
from haystack.dataclasses import ToolCall as HaystackToolCall
from haystack.tools import Tool
from haystack.utils import Secret


def _script(calls: Sequence[ToolCall]) -> list[Any]:
    return [
        tool_calls(*(tool_call(c.tool.name, c.arguments, id=c.call_id) for c in calls)),
        text("done"),
    ]


def _agent(model: ScriptedModel, calls: Sequence[ToolCall]) -> Agent:
    generator = OpenAIChatGenerator(
        model="gpt-4o-mini",
        api_key=Secret.from_token("unused"),
        api_base_url=model.base_url,
        max_retries=0,
    )
    unique = {id(c.tool): c.tool for c in calls}
    return Agent(chat_generator=generator, tools=list(unique.values()))


def run_turn(calls: Sequence[ToolCall]) -> dict[str, str]:
    """One model turn with ``calls``, run by ``Agent.run``; the tool results by call id."""
    with ScriptedModel(_script(calls)) as model:
        _agent(model, calls).run(messages=[ChatMessage.from_user("go")])
    assert model.errors == []
    return {r.call_id: r.content for r in tool_results(model.requests[1])}


async def arun_turn(calls: Sequence[ToolCall]) -> dict[str, str]:
    """:func:`run_turn` through ``Agent.run_async``."""
    with ScriptedModel(_script(calls)) as model:
        await _agent(model, calls).run_async(messages=[ChatMessage.from_user("go")])
    assert model.errors == []
    return {r.call_id: r.content for r in tool_results(model.requests[1])}


class TestHaystack(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> Tool:
        return tool(fn)

    def invoke(self, tool_: Tool, arguments: dict[str, Any], call_id: str) -> str:
        return run_turn([ToolCall(tool_, arguments, call_id)])[call_id]

    async def ainvoke(self, tool_: Tool, arguments: dict[str, Any], call_id: str) -> str:
        return (await arun_turn([ToolCall(tool_, arguments, call_id)]))[call_id]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # The Agent runs the calls of one step in parallel worker threads.
        return run_turn(calls)

    def tool_name(self, tool_: Tool) -> str:
        return tool_.name

    def tool_description(self, tool_: Tool) -> str:
        return tool_.description

    def tool_parameters(self, tool_: Tool) -> dict[str, Any]:
        # Exactly what OpenAIChatGenerator sends to the model.
        return tool_.tool_spec["parameters"]


def _guarded(human: ScriptedHuman, ran: list[tuple[int, int]]) -> tuple[Any, Any]:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        ran.append((x, y))
        return x * y

    @fl.require_approval()
    async def amultiply(x: int, y: int) -> int:
        """Multiply two integers."""
        ran.append((x, y))
        return x * y

    return multiply, amultiply


def test_async_calls_of_one_step_matched_by_call_id() -> None:
    ran: list[tuple[int, int]] = []
    human = ScriptedHuman({"call_a": approve(), "call_b": approve()})
    _, amultiply = _guarded(human, ran)
    hs_tool = tool(amultiply)
    results = asyncio.run(
        arun_turn(
            [
                ToolCall(hs_tool, {"x": 2, "y": 3}, "call_b"),
                ToolCall(hs_tool, {"x": 4, "y": 5}, "call_a"),
            ]
        )
    )
    assert results == {"call_b": "6", "call_a": "20"}
    asked = {r.call_id: r.spec.kwargs for r in human.function_call_requests}
    assert asked == {"call_b": {"x": 2, "y": 3}, "call_a": {"x": 4, "y": 5}}


def test_identical_calls_of_one_step_take_their_ids_in_order() -> None:
    ran: list[tuple[int, int]] = []
    human = ScriptedHuman({"call_first": approve(), "call_second": approve()})
    multiply, _ = _guarded(human, ran)
    hs_tool = tool(multiply)
    same = {"x": 3, "y": 3}
    results = run_turn(
        [ToolCall(hs_tool, same, "call_first"), ToolCall(hs_tool, same, "call_second")]
    )
    assert results == {"call_first": "9", "call_second": "9"}
    assert sorted(r.call_id for r in human.function_call_requests) == ["call_first", "call_second"]
    assert ran == [(3, 3), (3, 3)]


def test_direct_invoke_uses_fresh_ids_without_warning() -> None:
    # Outside an Agent there is no model call id: the core picks a fresh one, silently.
    ran: list[tuple[int, int]] = []
    human = ScriptedHuman([approve(), approve(), approve()])
    multiply, amultiply = _guarded(human, ran)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tool(multiply).invoke(x=2, y=5) == 10
        assert asyncio.run(tool(amultiply).invoke_async(x=3, y=5)) == 15
        assert tool(amultiply).invoke(x=4, y=5) == 20  # async function, sync Agent path
    assert ran == [(2, 5), (3, 5), (4, 5)]
    assert len({r.call_id for r in human.requests}) == 3


def test_messages_parameter_is_hidden_from_the_model() -> None:
    multiply, _ = _guarded(ScriptedHuman([]), [])
    hs_tool = tool(multiply)
    assert MESSAGES_PARAMETER not in hs_tool.tool_spec["parameters"]["properties"]
    assert hs_tool.inputs_from_state == {"messages": MESSAGES_PARAMETER}
    assert hs_tool.function is not None and hs_tool.async_function is not None


def test_unmatched_arguments_warn_once_and_use_a_fresh_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tool_module._WARNING, "warned", False)
    human = ScriptedHuman([approve(), approve()])
    multiply, _ = _guarded(human, [])
    hs_tool = tool(multiply)
    history = [
        ChatMessage.from_assistant(
            tool_calls=[
                HaystackToolCall(tool_name="multiply", arguments={"x": 1, "y": 1}, id="call_other")
            ]
        )
    ]
    with pytest.warns(RuntimeWarning, match="cannot find the model's tool call id"):
        assert hs_tool.invoke(x=2, y=2, **{MESSAGES_PARAMETER: history}) == 4
    [request] = human.function_call_requests
    assert request.call_id != "call_other"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert hs_tool.invoke(x=2, y=2, **{MESSAGES_PARAMETER: history}) == 4


def test_tools_builds_native_tools_in_order_and_refuses_bad_input() -> None:
    multiply, amultiply = _guarded(ScriptedHuman([]), [])
    built = tools([multiply, amultiply])
    assert all(type(t) is Tool for t in built)
    assert [t.name for t in built] == ["multiply", "amultiply"]
    with pytest.raises(TypeError, match="already a Haystack tool"):
        tool(built[0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a function"):
        tool(42)  # type: ignore[arg-type]
