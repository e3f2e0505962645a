"""functionlayer_pydantic_ai against the shared conformance suite.

Every invocation runs Pydantic AI's own agent loop (``Agent.run_sync`` / ``Agent.run``) with
Pydantic AI's ``FunctionModel``: the model's first response is the tool calls with their ids,
its second sees the tool results exactly as a real model would get them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer_pydantic_ai import tool, toolset
from pydantic_ai import Agent, Tool
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import ToolDefinition


class _Turn:
    """A model that makes ``calls`` in one turn, then records what came back and stops."""

    def __init__(self, calls: Sequence[tuple[str, dict[str, Any], str]]) -> None:
        self.calls = calls
        self.results: dict[str, str] = {}
        self.tool_defs: list[ToolDefinition] = []

    def respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.tool_defs = list(info.function_tools)
        last = messages[-1]
        if len(messages) == 1:
            return ModelResponse(
                parts=[ToolCallPart(name, args, tool_call_id=cid) for name, args, cid in self.calls]
            )
        assert isinstance(last, ModelRequest)
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                self.results[part.tool_call_id] = part.model_response_str()
            elif isinstance(part, RetryPromptPart) and part.tool_call_id:
                self.results[part.tool_call_id] = part.model_response()
        return ModelResponse(parts=[TextPart("done")])


def _agent(tools_: Sequence[Tool[Any]], turn: _Turn) -> Agent[None, str]:
    unique = {t.name: t for t in tools_}
    return Agent(FunctionModel(turn.respond), tools=list(unique.values()))


class TestPydanticAI(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> Tool[Any]:
        return tool(fn)

    def invoke(self, tool_: Tool[Any], arguments: dict[str, Any], call_id: str) -> str:
        turn = _Turn([(tool_.name, arguments, call_id)])
        _agent([tool_], turn).run_sync("go")
        return turn.results[call_id]

    async def ainvoke(self, tool_: Tool[Any], arguments: dict[str, Any], call_id: str) -> str:
        turn = _Turn([(tool_.name, arguments, call_id)])
        await _agent([tool_], turn).run("go")
        return turn.results[call_id]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # One model response with every call: Pydantic AI runs them concurrently.
        turn = _Turn([(c.tool.name, c.arguments, c.call_id) for c in calls])
        _agent([c.tool for c in calls], turn).run_sync("go")
        assert set(turn.results) == {c.call_id for c in calls}
        return turn.results

    def _definition(self, tool_: Tool[Any]) -> ToolDefinition:
        # What the agent loop hands the model, not just the tool's own attribute.
        turn = _Turn([])
        _agent([tool_], turn).run_sync("go")
        [definition] = turn.tool_defs
        return definition

    def tool_name(self, tool_: Tool[Any]) -> str:
        return self._definition(tool_).name

    def tool_description(self, tool_: Tool[Any]) -> str:
        return self._definition(tool_).description or ""

    def tool_parameters(self, tool_: Tool[Any]) -> dict[str, Any]:
        return self._definition(tool_).parameters_json_schema


# -- Pydantic AI-specific behaviour beyond the shared suite -------------------------------------


def _divide(human: ScriptedHuman) -> Callable[..., Any]:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int) -> float:
        """Divide x by y."""
        return x / y

    return divide


def test_invalid_arguments_ask_the_model_to_retry_before_anyone_is_asked() -> None:
    human = ScriptedHuman([])
    divide_tool = tool(_divide(human))
    turn = _Turn([("divide", {"x": "not a number", "y": 1}, "call_bad")])
    _agent([divide_tool], turn).run_sync("go")
    assert "Invalid arguments for divide" in turn.results["call_bad"]
    assert "x" in turn.results["call_bad"] and "Nothing was run" in turn.results["call_bad"]
    assert human.requests == []


def test_approved_function_exception_propagates_as_pydantic_ai_tools_do() -> None:
    divide_tool = tool(_divide(ScriptedHuman([approve()])))
    turn = _Turn([("divide", {"x": 1, "y": 0}, "call_zero")])
    with pytest.raises(ZeroDivisionError):
        _agent([divide_tool], turn).run_sync("go")


def test_toolset_runs_in_the_agent_loop_under_the_call_id() -> None:
    human = ScriptedHuman({"call_ts": approve()})
    turn = _Turn([("divide", {"x": 9, "y": 3}, "call_ts")])
    agent = Agent(FunctionModel(turn.respond), toolsets=[toolset([_divide(human)])])
    asyncio.run(agent.run("go"))
    assert turn.results == {"call_ts": "3.0"}
    assert [r.call_id for r in human.function_call_requests] == ["call_ts"]
