"""functionlayer_openai against the shared conformance suite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer_openai import FunctionTool, tool, tools
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageFunctionToolCall
from openai.types.chat.chat_completion_message_function_tool_call import Function


def _call(tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    # The chat-completions form of a model tool call, arguments JSON-encoded as the API sends them.
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": tool_.name, "arguments": json.dumps(arguments)},
    }


class TestOpenAI(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> FunctionTool:
        return tool(fn)

    def invoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        [message] = tools([tool_]).run([_call(tool_, arguments, call_id)])
        assert message["role"] == "tool" and message["tool_call_id"] == call_id
        return message["content"]

    async def ainvoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        [message] = await tools([tool_]).arun([_call(tool_, arguments, call_id)])
        assert message["tool_call_id"] == call_id
        return message["content"]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # One assistant turn through one Toolset.arun: the calls run concurrently.
        toolset = tools({c.tool.name: c.tool for c in calls}.values())
        messages = asyncio.run(toolset.arun([_call(c.tool, c.arguments, c.call_id) for c in calls]))
        assert [m["tool_call_id"] for m in messages] == [c.call_id for c in calls]
        return {m["tool_call_id"]: m["content"] for m in messages}

    def tool_name(self, tool_: FunctionTool) -> str:
        return tool_.definition["function"]["name"]

    def tool_description(self, tool_: FunctionTool) -> str:
        return tool_.definition["function"]["description"]

    def tool_parameters(self, tool_: FunctionTool) -> dict[str, Any]:
        parameters = tool_.definition["function"]["parameters"]
        assert tool_.responses_definition["parameters"] == parameters
        return parameters


# -- OpenAI-specific behaviour beyond the shared suite ------------------------------------------


def _guarded(answers: list[Any]) -> tuple[Callable[..., Any], ScriptedHuman]:
    human = ScriptedHuman(answers)
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int = 1) -> float:
        """Divide x by y."""
        return x / y

    return divide, human


def test_strict_needs_every_parameter_required() -> None:
    divide, _ = _guarded([])
    with pytest.raises(ValueError, match=r"strict mode.*\['y'\]"):
        tools([divide], strict=True)

    def add(x: int, y: int) -> int:
        """Add."""
        return x + y

    [definition] = tools([add], strict=True).definitions
    assert definition["function"]["strict"] is True
    assert definition["function"]["parameters"]["additionalProperties"] is False


def test_accepts_sdk_objects_whole_messages_and_none() -> None:
    divide, _ = _guarded([approve(), approve()])
    toolset = tools([divide])
    sdk_call = ChatCompletionMessageFunctionToolCall(
        id="call_sdk",
        type="function",
        function=Function(name="divide", arguments='{"x": 9, "y": 3}'),
    )
    assert toolset.run([sdk_call]) == [
        {"role": "tool", "tool_call_id": "call_sdk", "content": "3.0"}
    ]
    message = ChatCompletionMessage(
        role="assistant", content=None, tool_calls=[sdk_call.model_copy(update={"id": "call_msg"})]
    )
    assert toolset.run(message)[0]["tool_call_id"] == "call_msg"
    assert toolset.run(None) == []


def test_malformed_tool_call_is_a_clear_error_before_anything_runs() -> None:
    divide, human = _guarded([approve()])
    with pytest.raises(ValueError, match="needs an 'id'"):
        tools([divide]).run([{"function": {"name": "divide", "arguments": "{}"}}])
    assert human.requests == []


def test_duplicate_tool_names_are_refused() -> None:
    divide, _ = _guarded([])
    with pytest.raises(ValueError, match="two tools are named 'divide'"):
        tools([divide, divide])


def test_approved_function_exception_propagates_after_the_turn_finishes() -> None:
    divide, human = _guarded([approve(), approve()])
    toolset = tools([divide])
    calls = [
        {"id": "call_zero", "function": {"name": "divide", "arguments": '{"x": 1, "y": 0}'}},
        {"id": "call_ok", "function": {"name": "divide", "arguments": '{"x": 4, "y": 2}'}},
    ]
    with pytest.raises(ZeroDivisionError):
        asyncio.run(toolset.arun(calls))
    # The other call of the turn still got its decision and ran; nothing was left pending.
    assert sorted(r.call_id for r in human.function_call_requests) == ["call_ok", "call_zero"]
