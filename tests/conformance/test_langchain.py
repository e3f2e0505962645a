"""functionlayer_langchain against the shared conformance suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functionlayer_langchain import tool
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from tests.conformance.suite import AdapterConformance


def _tool_call(tool_: BaseTool, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    # What LangChain's agents (ToolNode) pass: the model's ToolCall with its id.
    return {"type": "tool_call", "id": call_id, "name": tool_.name, "args": arguments}


def _content(message: Any) -> str:
    assert isinstance(message, ToolMessage), message
    return str(message.content)


class TestLangChain(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> BaseTool:
        return tool(fn)

    def invoke(self, tool_: BaseTool, arguments: dict[str, Any], call_id: str) -> str:
        return _content(tool_.invoke(_tool_call(tool_, arguments, call_id)))

    async def ainvoke(self, tool_: BaseTool, arguments: dict[str, Any], call_id: str) -> str:
        return _content(await tool_.ainvoke(_tool_call(tool_, arguments, call_id)))

    def tool_name(self, tool_: BaseTool) -> str:
        return tool_.name

    def tool_description(self, tool_: BaseTool) -> str:
        return tool_.description

    def tool_parameters(self, tool_: BaseTool) -> dict[str, Any]:
        # Exactly what ChatOpenAI.bind_tools sends to the model.
        return convert_to_openai_tool(tool_)["function"]["parameters"]
