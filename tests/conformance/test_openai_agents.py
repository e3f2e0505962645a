"""functionlayer_openai_agents against the shared conformance suite.

Every invocation runs the SDK's own agent loop (``Runner.run_sync`` / ``Runner.run``) with a
model implementing the SDK's ``Model`` interface: its first response is the tool calls with
their call ids, its second sees the tool outputs exactly as a real model would get them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    Model,
    ModelResponse,
    Runner,
    Usage,
    default_tool_error_function,
    set_tracing_disabled,
)
from agents.exceptions import UserError
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer_openai_agents import tool, tools
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

set_tracing_disabled(True)  # the SDK would export traces to api.openai.com


class _Turn(Model):
    """A model that makes ``calls`` in one turn, then records the outputs it gets and stops."""

    def __init__(self, calls: Sequence[tuple[str, dict[str, Any] | str, str]]) -> None:
        self.calls = calls
        self.results: dict[str, str] = {}
        self.tools: list[Any] = []

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        model_input = args[1] if len(args) > 1 else kwargs["input"]
        self.tools = list(args[3] if len(args) > 3 else kwargs["tools"])
        outputs = [
            item
            for item in (model_input if isinstance(model_input, list) else [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        if not outputs:
            return ModelResponse(
                output=[
                    ResponseFunctionToolCall(
                        type="function_call",
                        call_id=call_id,
                        name=name,
                        arguments=arguments
                        if isinstance(arguments, str)
                        else json.dumps(arguments),
                    )
                    for name, arguments, call_id in self.calls
                ],
                usage=Usage(),
                response_id=None,
            )
        for item in outputs:
            self.results[item["call_id"]] = str(item["output"])
        text = ResponseOutputText(type="output_text", text="done", annotations=[])
        message = ResponseOutputMessage(
            id="msg_1", type="message", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the conformance runs are not streamed")


def _agent(tools_: Sequence[FunctionTool], turn: _Turn) -> Agent[Any]:
    unique = {t.name: t for t in tools_}
    return Agent(name="conformance", model=turn, tools=list(unique.values()))


class TestOpenAIAgents(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> FunctionTool:
        return tool(fn)

    def invoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        turn = _Turn([(tool_.name, arguments, call_id)])
        Runner.run_sync(_agent([tool_], turn), "go")
        return turn.results[call_id]

    async def ainvoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        turn = _Turn([(tool_.name, arguments, call_id)])
        await Runner.run(_agent([tool_], turn), "go")
        return turn.results[call_id]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # One model response with every call: the SDK runs function tools concurrently.
        turn = _Turn([(c.tool.name, c.arguments, c.call_id) for c in calls])
        Runner.run_sync(_agent([c.tool for c in calls], turn), "go")
        assert set(turn.results) == {c.call_id for c in calls}
        return turn.results

    def _sent(self, tool_: FunctionTool) -> FunctionTool:
        # The tool as the agent loop hands it to the model.
        turn = _Turn([])
        Runner.run_sync(_agent([tool_], turn), "go")
        [sent] = turn.tools
        assert isinstance(sent, FunctionTool)
        return sent

    def tool_name(self, tool_: FunctionTool) -> str:
        return self._sent(tool_).name

    def tool_description(self, tool_: FunctionTool) -> str:
        return self._sent(tool_).description

    def tool_parameters(self, tool_: FunctionTool) -> dict[str, Any]:
        return self._sent(tool_).params_json_schema


# -- OpenAI Agents-specific behaviour beyond the shared suite ------------------------------------


def _divide(human: ScriptedHuman) -> Callable[..., Any]:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int = 1) -> float:
        """Divide x by y."""
        return x / y

    return divide


def _run(tool_: FunctionTool, arguments: dict[str, Any] | str, call_id: str) -> str:
    turn = _Turn([(tool_.name, arguments, call_id)])
    Runner.run_sync(_agent([tool_], turn), "go")
    return turn.results[call_id]


def test_malformed_or_invalid_arguments_are_reported_before_anyone_is_asked() -> None:
    human = ScriptedHuman([])
    divide_tool = tool(_divide(human))
    assert "not valid JSON" in _run(divide_tool, "{oops", "call_json")
    invalid = _run(divide_tool, {"x": "many"}, "call_invalid")
    assert invalid.startswith("Error: invalid arguments for divide: x:"), invalid
    assert human.requests == []


def test_approved_function_exception_goes_to_the_failure_error_function() -> None:
    # As with @function_tool: by default the model gets the SDK's own error message (older
    # releases include the exception's text, newer ones a fixed sentence), and the run goes on.
    divide_tool = tool(_divide(ScriptedHuman([approve()])))
    result = _run(divide_tool, {"x": 1, "y": 0}, "call_zero")
    assert result == default_tool_error_function(None, ZeroDivisionError("division by zero"))
    # failure_error_function=None: the exception fails the run (the SDK wraps it).
    raising = tool(_divide(ScriptedHuman([approve()])), failure_error_function=None)
    with pytest.raises(UserError, match="division by zero") as failed:
        _run(raising, {"x": 1, "y": 0}, "call_zero")
    assert isinstance(failed.value.__cause__, ZeroDivisionError)


def test_strict_schema_only_when_every_parameter_is_required() -> None:
    divide_tool = tool(_divide(ScriptedHuman([])))  # y has a default
    assert divide_tool.strict_json_schema is False

    def add(x: int, y: int) -> int:
        """Add."""
        return x + y

    [add_tool] = tools([add])
    assert add_tool.strict_json_schema is True
    assert add_tool.params_json_schema["additionalProperties"] is False
    assert _run(add_tool, {"x": 1, "y": 2}, "call_add") == "3"
