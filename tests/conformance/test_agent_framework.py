"""functionlayer_agent_framework against the shared conformance suite.

Every invocation runs Microsoft Agent Framework's own function-calling loop (``Agent.run``
with its OpenAI chat-completions client) against FunctionLayer's scripted model over HTTP: the
model's first response is the tool calls with their call ids, its second sees the tool results
exactly as a real model would get them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from agent_framework import Agent, FunctionTool
from agent_framework.openai import OpenAIChatCompletionClient
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer.testing.model import Reply, ScriptedModel, ScriptedToolCall, tool_results
from functionlayer_agent_framework import tool, tools


class _Turn:
    """A model that makes ``calls`` in one turn, then records the results it gets and stops."""

    def __init__(self, calls: Sequence[tuple[str, dict[str, Any] | str, str]]) -> None:
        self.calls = calls
        self.results: dict[str, str] = {}
        self.tools: list[dict[str, Any]] = []

    def respond(self, request: dict[str, Any]) -> Reply:
        self.tools = list(request.get("tools") or [])
        results = tool_results(request)
        if not results and self.calls:
            return Reply(tool_calls=tuple(ScriptedToolCall(n, a, c) for n, a, c in self.calls))
        self.results.update({result.call_id: result.content for result in results})
        return Reply(content="done")


async def _arun(tools_: Sequence[FunctionTool], turn: _Turn) -> None:
    unique = {t.name: t for t in tools_}
    with ScriptedModel(turn.respond) as model:
        client = OpenAIChatCompletionClient(
            model="gpt-4o-mini", base_url=model.base_url, api_key="unused"
        )
        agent = Agent(client=client, tools=list(unique.values()))
        await agent.run("go")
        assert model.errors == []


def _run(tools_: Sequence[FunctionTool], turn: _Turn) -> None:
    asyncio.run(_arun(tools_, turn))


class TestAgentFramework(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> FunctionTool:
        return tool(fn)

    def invoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        turn = _Turn([(tool_.name, arguments, call_id)])
        _run([tool_], turn)
        return turn.results[call_id]

    async def ainvoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        turn = _Turn([(tool_.name, arguments, call_id)])
        await _arun([tool_], turn)
        return turn.results[call_id]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # One model response with every call: the framework runs them concurrently.
        turn = _Turn([(c.tool.name, c.arguments, c.call_id) for c in calls])
        _run([c.tool for c in calls], turn)
        assert set(turn.results) == {c.call_id for c in calls}
        return turn.results

    def _sent(self, tool_: FunctionTool) -> dict[str, Any]:
        # The tool as the agent loop hands it to the model.
        turn = _Turn([])
        _run([tool_], turn)
        [sent] = turn.tools
        function: dict[str, Any] = sent["function"]
        return function

    def tool_name(self, tool_: FunctionTool) -> str:
        return str(self._sent(tool_)["name"])

    def tool_description(self, tool_: FunctionTool) -> str:
        return str(self._sent(tool_).get("description", ""))

    def tool_parameters(self, tool_: FunctionTool) -> dict[str, Any]:
        parameters: dict[str, Any] = self._sent(tool_)["parameters"]
        return parameters


# -- Agent Framework-specific behaviour beyond the shared suite ----------------------------------


def _divide(human: ScriptedHuman) -> Callable[..., Any]:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int = 1) -> float:
        """Divide x by y."""
        return x / y

    return divide


def test_invalid_arguments_are_reported_before_anyone_is_asked() -> None:
    human = ScriptedHuman([])
    divide_tool = tool(_divide(human))
    turn = _Turn([("divide", "{oops", "call_json"), ("divide", {"x": "many"}, "call_invalid")])
    _run([divide_tool], turn)
    assert set(turn.results) == {"call_json", "call_invalid"}
    assert all(result.startswith("Error:") for result in turn.results.values()), turn.results
    assert human.requests == []


def test_approved_function_exception_is_the_frameworks_tool_error() -> None:
    # As with any Agent Framework tool: the model gets the framework's error result and the
    # run goes on; the function ran once, after its approval.
    human = ScriptedHuman([approve()])
    divide_tool = tool(_divide(human))
    turn = _Turn([("divide", {"x": 1, "y": 0}, "call_zero")])
    _run([divide_tool], turn)
    assert turn.results["call_zero"].startswith("Error:"), turn.results
    assert [r.call_id for r in human.function_call_requests] == ["call_zero"]


def test_the_guarded_tool_needs_no_framework_approval() -> None:
    [divide_tool] = tools([_divide(ScriptedHuman([]))])
    assert divide_tool.approval_mode == "never_require"
