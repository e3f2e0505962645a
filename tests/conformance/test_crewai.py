"""functionlayer_crewai against the shared conformance suite.

Calls go through CrewAI's own native tool-call executor (``execute_single_native_tool_call``),
the function its agent loop runs for each model tool call, so the tool sees exactly what it
sees inside a Crew: the arguments, and the model's call id only through the executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crewai.tools import BaseTool
from crewai.utilities.agent_utils import (
    convert_tools_to_openai_schema,
    execute_single_native_tool_call,
)
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve, reject
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer_crewai import FunctionLayerTool, tool, tools


def _openai_tool_call(tool_: BaseTool, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": tool_.name, "arguments": json.dumps(arguments)},
    }


class TestCrewAI(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> BaseTool:
        return tool(fn)

    def invoke(self, tool_: BaseTool, arguments: dict[str, Any], call_id: str) -> str:
        _, available, _ = convert_tools_to_openai_schema([tool_])
        outcome = execute_single_native_tool_call(
            _openai_tool_call(tool_, arguments, call_id),
            available_functions=available,
            original_tools=[tool_],
            structured_tools=None,
            tools_handler=None,
            agent=None,
            task=None,
            crew=None,
            event_source=self,
        )
        assert outcome.call_id == call_id
        return str(outcome.result)

    async def ainvoke(self, tool_: BaseTool, arguments: dict[str, Any], call_id: str) -> str:
        # CrewAI's async kickoff runs its agent loop, and so every tool call, in a worker thread.
        return await asyncio.to_thread(self.invoke, tool_, arguments, call_id)

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # As CrewAI's executor does for several calls in one turn: parallel threads.
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {
                call.call_id: pool.submit(
                    contextvars.copy_context().run,
                    self.invoke,
                    call.tool,
                    call.arguments,
                    call.call_id,
                )
                for call in calls
            }
            return {call_id: future.result() for call_id, future in futures.items()}

    def tool_name(self, tool_: BaseTool) -> str:
        return tool_.name

    def tool_description(self, tool_: BaseTool) -> str:
        return tool_.description

    def tool_parameters(self, tool_: BaseTool) -> dict[str, Any]:
        # The schema the tool declares. CrewAI sends it in OpenAI strict mode, which marks
        # every property required (see test_crewai_sends_the_schema_in_strict_mode).
        return tool_.args_schema.model_json_schema()


def _guarded(fl: FunctionLayer, ran: list[tuple[int, int]]) -> tuple[Any, Any]:
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


def test_tools_builds_native_tools_in_order() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))
    multiply, amultiply = _guarded(fl, [])
    built = tools([multiply, amultiply])
    assert [type(t) for t in built] == [FunctionLayerTool, FunctionLayerTool]
    assert all(isinstance(t, BaseTool) for t in built)
    assert [t.name for t in built] == ["multiply", "amultiply"]


def test_direct_run_and_arun_ask_the_human() -> None:
    # Outside an agent loop there is no model call id: the core picks a fresh one.
    ran: list[tuple[int, int]] = []
    human = ScriptedHuman([approve(), reject("no"), approve()])
    multiply, amultiply = _guarded(FunctionLayer(backend=human), ran)
    assert tool(multiply).run(x=2, y=5) == 10
    assert asyncio.run(tool(amultiply).arun(x=3, y=5)) == "User denied amultiply with feedback: no"
    assert asyncio.run(tool(multiply).arun(x=4, y=5)) == 20
    assert ran == [(2, 5), (4, 5)]
    assert len({r.call_id for r in human.requests}) == 3


def test_async_function_runs_from_sync_code_inside_a_running_loop() -> None:
    ran: list[tuple[int, int]] = []
    _, amultiply = _guarded(FunctionLayer(backend=ScriptedHuman([approve()])), ran)
    crew_tool = tool(amultiply)

    async def inside_loop() -> Any:
        return crew_tool.run(x=6, y=7)  # a sync CrewAI path called while a loop runs

    assert asyncio.run(inside_loop()) == 42
    assert ran == [(6, 7)]


def test_crewai_sends_the_schema_in_strict_mode() -> None:
    def transfer_funds(account_id: str, amount_cents: int, memo: str = "") -> str:
        """Move money."""
        return "done"

    schemas, available, _ = convert_tools_to_openai_schema([tool(transfer_funds)])
    function = schemas[0]["function"]
    assert function["name"] == "transfer_funds" and function["description"] == "Move money."
    assert function["strict"] is True
    parameters = function["parameters"]
    assert parameters["additionalProperties"] is False
    assert {k: v["type"] for k, v in parameters["properties"].items()} == {
        "account_id": "string",
        "amount_cents": "integer",
        "memo": "string",
    }
    assert parameters["properties"]["memo"]["default"] == ""
    assert set(available) == {"transfer_funds"}


def test_results_are_never_served_from_crewai_cache() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))
    multiply, _ = _guarded(fl, [])
    assert tool(multiply).cache_function({"x": 1, "y": 2}, 2) is False


def test_bad_input_is_refused_clearly() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([]))
    multiply, _ = _guarded(fl, [])
    crew_tool = tool(multiply)
    for bad in (crew_tool, 42):
        try:
            tool(bad)
        except TypeError as error:
            assert "tool()" in str(error) or "already a CrewAI tool" in str(error)
        else:
            raise AssertionError(f"tool({bad!r}) was accepted")
