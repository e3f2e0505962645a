"""functionlayer_llamaindex against the shared conformance suite.

Every call goes through LlamaIndex's real agent loop: a ``FunctionAgent`` (with the OpenAI LLM
class) talks over HTTP to the scripted model, which makes exactly the tool calls of the case
with their ids and then finishes. The result is the tool message the agent sent back to the
model, so the harness sees what the model sees.
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
from functionlayer_llamaindex import tool, tools
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI


async def run_turn(calls: Sequence[ToolCall]) -> dict[str, str]:
    """One model turn with ``calls``, run by a FunctionAgent; the tool results by call id."""
    script = [
        tool_calls(*(tool_call(c.tool.metadata.name, c.arguments, id=c.call_id) for c in calls)),
        text("done"),
    ]
    unique = {id(c.tool): c.tool for c in calls}
    with ScriptedModel(script) as model:
        llm = OpenAI(model="gpt-4o-mini", api_base=model.base_url, api_key="unused", max_retries=0)
        agent = FunctionAgent(tools=list(unique.values()), llm=llm)
        await agent.run("go")
    assert model.errors == []
    return {r.call_id: r.content for r in tool_results(model.requests[1])}


class TestLlamaIndex(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> FunctionTool:
        return tool(fn)

    def invoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        # LlamaIndex's agents are async only; a sync caller runs one with asyncio.run.
        return asyncio.run(self.ainvoke(tool_, arguments, call_id))

    async def ainvoke(self, tool_: FunctionTool, arguments: dict[str, Any], call_id: str) -> str:
        results = await run_turn([ToolCall(tool_, arguments, call_id)])
        return results[call_id]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # The agent runs the calls of one turn concurrently, each in its own workflow step.
        return asyncio.run(run_turn(calls))

    def tool_name(self, tool_: FunctionTool) -> str:
        return str(tool_.metadata.name)

    def tool_description(self, tool_: FunctionTool) -> str:
        return tool_.metadata.description

    def tool_parameters(self, tool_: FunctionTool) -> dict[str, Any]:
        # Exactly what the OpenAI LLM class sends to the model.
        return tool_.metadata.to_openai_tool()["function"]["parameters"]


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


def test_direct_call_and_acall_use_fresh_ids_without_warning() -> None:
    # Outside an agent there is no model call id: the core picks a fresh one, silently.
    ran: list[tuple[int, int]] = []
    human = ScriptedHuman([approve(), approve(), approve()])
    multiply, amultiply = _guarded(human, ran)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tool(multiply).call(x=2, y=5).content == "10"
        assert asyncio.run(tool(amultiply).acall(x=3, y=5)).content == "15"
        assert tool(amultiply).call(x=4, y=5).content == "20"  # async function, sync caller
    assert ran == [(2, 5), (3, 5), (4, 5)]
    assert len({r.call_id for r in human.requests}) == 3


def test_async_function_called_sync_inside_a_running_loop() -> None:
    ran: list[tuple[int, int]] = []
    _, amultiply = _guarded(ScriptedHuman([approve()]), ran)
    li_tool = tool(amultiply)

    async def inside_loop() -> str:
        return li_tool.call(x=6, y=7).content

    assert asyncio.run(inside_loop()) == "42"
    assert ran == [(6, 7)]


def test_tools_builds_native_function_tools_in_order() -> None:
    multiply, amultiply = _guarded(ScriptedHuman([]), [])
    built = tools([multiply, amultiply])
    assert all(type(t) is FunctionTool for t in built)
    assert [t.metadata.name for t in built] == ["multiply", "amultiply"]
    assert tool(multiply, name="times", description="Times.").metadata.name == "times"


def test_bad_input_is_refused_clearly() -> None:
    multiply, _ = _guarded(ScriptedHuman([]), [])
    with pytest.raises(TypeError, match="already a LlamaIndex tool"):
        tool(tool(multiply))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a function"):
        tool(42)  # type: ignore[arg-type]


def test_invalid_arguments_reach_the_model_as_an_error_and_nothing_runs() -> None:
    ran: list[tuple[int, int]] = []
    human = ScriptedHuman([approve()])
    multiply, _ = _guarded(human, ran)
    results = asyncio.run(run_turn([ToolCall(tool(multiply), {"x": "two", "y": 5}, "call_bad")]))
    assert "validation error" in results["call_bad"] and "x" in results["call_bad"]
    assert ran == [] and human.requests == []


def test_inside_a_step_without_tool_id_warns_once_and_uses_a_fresh_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functionlayer_llamaindex import _tool as tool_module
    from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step

    monkeypatch.setattr(tool_module._WARNING, "warned", False)
    human = ScriptedHuman([approve(), approve()])
    multiply, _ = _guarded(human, [])
    li_tool = tool(multiply)

    class CallsToolsItself(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            first = await li_tool.acall(x=2, y=3)
            second = await li_tool.acall(x=2, y=4)
            return StopEvent(result=f"{first.content} {second.content}")

    async def main() -> str:
        return str(await CallsToolsItself().run())

    with pytest.warns(RuntimeWarning, match="cannot find the model's tool call id") as record:
        assert asyncio.run(main()) == "6 8"
    assert len([w for w in record if w.category is RuntimeWarning]) == 1
    assert len({r.call_id for r in human.function_call_requests}) == 2
