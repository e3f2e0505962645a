"""FunctionLayer functions as LangChain ``StructuredTool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``StructuredTool`` and carries the model's ``tool_call_id`` through to the approval's call id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from functionlayer import ToolSpec, tool_spec
from langchain_core.tools import StructuredTool

__all__ = ["FunctionLayerTool", "tool", "tools"]

# LangChain hands the ToolCall's id to BaseTool.run/arun (``tool_call_id=``) but not to the
# function itself. The tool records it here; ``run`` executes the function in a copy of the
# current context, so the function sees the id of its own call even when calls run concurrently.
_TOOL_CALL_ID: ContextVar[str | None] = ContextVar(
    "functionlayer_langchain_tool_call_id", default=None
)


class FunctionLayerTool(StructuredTool):
    """A ``StructuredTool`` whose approvals use the LLM's ``tool_call_id`` as call id.

    Invoked with a ToolCall (``{"type": "tool_call", "id": ..., "args": ...}``, as agents do),
    the human's decision is requested under that id, so a retried turn never asks twice.
    Invoked with plain arguments, the core uses a fresh id.
    """

    def run(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        token = _TOOL_CALL_ID.set(tool_call_id)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _TOOL_CALL_ID.reset(token)

    async def arun(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        token = _TOOL_CALL_ID.set(tool_call_id)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _TOOL_CALL_ID.reset(token)


def tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> FunctionLayerTool:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into a
    LangChain tool with its name, docstring and argument schema; sync and async both work.

    A rejected call returns the human's feedback as the tool result, so the agent loop goes on.
    """
    spec = tool_spec(fn, name=name, description=description)
    return _build(spec)


def tools(fns: Iterable[Callable[..., Any]]) -> list[FunctionLayerTool]:
    """:func:`tool` for each function."""
    return [tool(fn) for fn in fns]


def _build(spec: ToolSpec) -> FunctionLayerTool:
    def run(**arguments: Any) -> Any:
        return spec.run(arguments, call_id=_TOOL_CALL_ID.get())

    async def arun(**arguments: Any) -> Any:
        return await spec.arun(arguments, call_id=_TOOL_CALL_ID.get())

    return FunctionLayerTool(
        name=spec.name,
        description=spec.description,
        args_schema=spec.args_model,
        func=run,
        coroutine=arun,
    )
