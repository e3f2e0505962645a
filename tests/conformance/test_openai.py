"""functionlayer_openai against the shared conformance suite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from functionlayer_openai import FunctionTool, tool, tools

from tests.conformance.suite import AdapterConformance, ToolCall


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
