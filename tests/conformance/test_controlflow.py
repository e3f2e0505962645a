"""functionlayer_controlflow against the shared conformance suite.

Calls go through ControlFlow's own ``handle_tool_call``/``handle_tool_call_async``, the functions
its agent loop runs for each model tool call. They run the tool as a Prefect task, so this
module starts ControlFlow's Prefect server (once per process, shared with the e2e module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from controlflow.tools import Tool
from controlflow.tools.tools import handle_tool_call, handle_tool_call_async
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance
from functionlayer_controlflow import tool, tools

pytestmark = pytest.mark.controlflow


def _tool_call(tool_: Tool, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    # What ControlFlow hands handle_tool_call: LangChain's parsed ToolCall from the model.
    return {"type": "tool_call", "id": call_id, "name": tool_.name, "args": arguments}


class TestControlFlow(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> Tool:
        return tool(fn)

    def invoke(self, tool_: Tool, arguments: dict[str, Any], call_id: str) -> str:
        return handle_tool_call(_tool_call(tool_, arguments, call_id), [tool_]).str_result

    async def ainvoke(self, tool_: Tool, arguments: dict[str, Any], call_id: str) -> str:
        result = await handle_tool_call_async(_tool_call(tool_, arguments, call_id), [tool_])
        return result.str_result

    def tool_name(self, tool_: Tool) -> str:
        return tool_.name

    def tool_description(self, tool_: Tool) -> str:
        return tool_.description

    def tool_parameters(self, tool_: Tool) -> dict[str, Any]:
        # What ControlFlow binds to its LangChain chat model.
        return dict(tool_.to_lc_tool()["parameters"])


def test_invalid_arguments_reach_the_model_as_a_tool_error() -> None:
    ran: list[int] = []
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        ran.append(x * y)
        return x * y

    result = handle_tool_call(
        _tool_call(tool(multiply), {"x": "two", "y": 5}, "c1"), tools([multiply])
    )
    assert result.is_error
    assert result.str_result.startswith('Error calling function "multiply":')
    assert "valid integer" in result.str_result
    assert ran == []


def test_exception_from_an_approved_function_follows_controlflow_convention() -> None:
    fl = FunctionLayer(backend=ScriptedHuman([approve()]))

    @fl.require_approval()
    def divide(x: int, y: int) -> float:
        """Divide x by y."""
        return x / y

    result = handle_tool_call(_tool_call(tool(divide), {"x": 1, "y": 0}, "c1"), [tool(divide)])
    assert result.is_error
    assert result.str_result == 'Error calling function "divide": division by zero'


def test_bad_input_is_refused_clearly() -> None:
    def add(x: int, y: int) -> int:
        """Add."""
        return x + y

    with pytest.raises(TypeError, match="already a ControlFlow tool"):
        tool(tool(add))
    with pytest.raises(TypeError, match="needs a function"):
        tool(42)  # type: ignore[arg-type]
