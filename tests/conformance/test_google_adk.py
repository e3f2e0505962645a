"""functionlayer_google_adk against the shared conformance suite.

Every invocation runs ADK's own agent loop (``Runner.run_async`` on an ``LlmAgent``) with a
model implementing ADK's ``BaseLlm``: its first response is the function calls with their ids,
its second sees the function responses exactly as a real model would get them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import pytest
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve
from functionlayer.testing.conformance import AdapterConformance, ToolCall
from functionlayer_google_adk import FunctionLayerTool, tool, tools
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.genai import types
from pydantic import Field


class _Turn(BaseLlm):
    """A model that makes ``calls`` in one turn, then records the responses and stops."""

    calls: list[tuple[str, Any, str]] = Field(default_factory=list)
    results: dict[str, str] = Field(default_factory=dict)
    declarations: list[types.FunctionDeclaration] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        for group in (llm_request.config.tools if llm_request.config else None) or []:
            self.declarations.extend(getattr(group, "function_declarations", None) or [])
        answered = [
            part.function_response
            for content in llm_request.contents
            for part in content.parts or []
            if part.function_response is not None
        ]
        if not answered:
            parts = [
                types.Part(function_call=types.FunctionCall(id=call_id, name=name, args=args))
                for name, args, call_id in self.calls
            ]
            yield LlmResponse(content=types.Content(role="model", parts=parts))
            return
        for response in answered:
            self.results[response.id or ""] = _as_text(response.response)
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text="done")]))


def _as_text(response: Any) -> str:
    if isinstance(response, dict) and set(response) == {"result"}:
        response = response["result"]
    return response if isinstance(response, str) else json.dumps(response)


def turn(calls: Sequence[tuple[str, Any, str]]) -> _Turn:
    return _Turn(model="turn", calls=list(calls))


async def run_turn(tools_: Sequence[Any], model: _Turn, **agent: Any) -> None:
    unique = {t.name: t for t in tools_}
    runner = InMemoryRunner(
        agent=LlmAgent(name="conformance", model=model, tools=list(unique.values()), **agent),
        app_name="conformance",
    )
    session = await runner.session_service.create_session(app_name="conformance", user_id="u")
    message = types.Content(role="user", parts=[types.Part(text="go")])
    async for _ in runner.run_async(user_id="u", session_id=session.id, new_message=message):
        pass


class TestGoogleADK(AdapterConformance):
    def make_tool(self, fn: Callable[..., Any]) -> FunctionLayerTool:
        return tool(fn)

    def invoke(self, tool_: FunctionLayerTool, arguments: dict[str, Any], call_id: str) -> str:
        return asyncio.run(self.ainvoke(tool_, arguments, call_id))

    async def ainvoke(
        self, tool_: FunctionLayerTool, arguments: dict[str, Any], call_id: str
    ) -> str:
        model = turn([(tool_.name, arguments, call_id)])
        await run_turn([tool_], model)
        return model.results[call_id]

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        # One model response with every call: ADK runs them concurrently.
        model = turn([(c.tool.name, c.arguments, c.call_id) for c in calls])
        asyncio.run(run_turn([c.tool for c in calls], model))
        assert set(model.results) == {c.call_id for c in calls}
        return model.results

    def _sent(self, tool_: FunctionLayerTool) -> types.FunctionDeclaration:
        # The declaration as the agent loop hands it to the model.
        model = turn([])
        asyncio.run(run_turn([tool_], model))
        [sent] = model.declarations
        return sent

    def tool_name(self, tool_: FunctionLayerTool) -> str:
        return self._sent(tool_).name or ""

    def tool_description(self, tool_: FunctionLayerTool) -> str:
        return self._sent(tool_).description or ""

    def tool_parameters(self, tool_: FunctionLayerTool) -> dict[str, Any]:
        schema = self._sent(tool_).parameters_json_schema
        assert isinstance(schema, dict)
        return schema


# -- ADK-specific behaviour beyond the shared suite -----------------------------------------------


def _divide(human: ScriptedHuman) -> Callable[..., Any]:
    fl = FunctionLayer(backend=human)

    @fl.require_approval()
    def divide(x: int, y: int = 1) -> float:
        """Divide x by y."""
        return x / y

    return divide


def test_invalid_arguments_are_reported_before_anyone_is_asked() -> None:
    human = ScriptedHuman([])
    model = turn([("divide", {"x": "many"}, "call_invalid")])
    asyncio.run(run_turn([tool(_divide(human))], model))
    assert model.results["call_invalid"].startswith("divide was not run: invalid arguments (x:")
    assert human.requests == []


def test_approved_function_exception_reaches_adk_error_handling() -> None:
    # As from any ADK tool: without on_tool_error_callback the run fails with the exception ...
    with pytest.raises(ZeroDivisionError):
        asyncio.run(
            run_turn(
                tools([_divide(ScriptedHuman([approve()]))]),
                turn([("divide", {"x": 1, "y": 0}, "c")]),
            )
        )

    # ... and the agent's on_tool_error_callback can answer the model instead.
    def on_error(tool: Any, args: Any, tool_context: Any, error: Exception) -> dict[str, str]:
        return {"result": f"failed: {error}"}

    model = turn([("divide", {"x": 1, "y": 0}, "call_zero")])
    asyncio.run(
        run_turn(
            tools([_divide(ScriptedHuman([approve()]))]), model, on_tool_error_callback=on_error
        )
    )
    assert model.results["call_zero"] == "failed: division by zero"
