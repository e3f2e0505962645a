"""FunctionLayer functions as LangChain ``StructuredTool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``StructuredTool`` and carries the model's ``tool_call_id`` through to the approval's call id.
Under LangGraph's ``ToolNode`` (``create_agent``) the tool also asks for the graph state (the
``ToolRuntime`` it injects), and attaches the conversation's context for the approver: the last
human message and the calling AI message's text (:mod:`functionlayer_langchain._context`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from functionlayer import RequestContext, ToolSpec, request_context_scope, tool_spec
from langchain_core.tools import StructuredTool

from functionlayer_langchain._context import context_for, messages_of

__all__ = ["FunctionLayerTool", "tool", "tools"]

# LangChain hands the ToolCall's id to BaseTool.run/arun (``tool_call_id=``) but not to the
# function itself. The tool records it here; ``run`` executes the function in a copy of the
# current context, so the function sees the id of its own call even when calls run concurrently.
_TOOL_CALL_ID: ContextVar[str | None] = ContextVar(
    "functionlayer_langchain_tool_call_id", default=None
)
_CONTEXT: ContextVar[RequestContext | None] = ContextVar(
    "functionlayer_langchain_request_context", default=None
)
_RUNTIME = "runtime"  # the argument LangGraph's ToolNode injects the ToolRuntime as


class FunctionLayerTool(StructuredTool):
    """A ``StructuredTool`` whose approvals use the LLM's ``tool_call_id`` as call id.

    Invoked with a ToolCall (``{"type": "tool_call", "id": ..., "args": ...}``, as agents do),
    the human's decision is requested under that id, so a retried turn never asks twice.
    Invoked with plain arguments, the core uses a fresh id.
    """

    def run(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        tool_input, context = self._take_runtime(tool_input, tool_call_id)
        token, context_token = _TOOL_CALL_ID.set(tool_call_id), _CONTEXT.set(context)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _CONTEXT.reset(context_token)
            _TOOL_CALL_ID.reset(token)

    async def arun(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        tool_input, context = self._take_runtime(tool_input, tool_call_id)
        token, context_token = _TOOL_CALL_ID.set(tool_call_id), _CONTEXT.set(context)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _CONTEXT.reset(context_token)
            _TOOL_CALL_ID.reset(token)

    def _take_runtime(
        self, tool_input: Any, tool_call_id: str | None
    ) -> tuple[Any, RequestContext | None]:
        """The arguments without the ``ToolRuntime`` LangGraph injected (it is not the
        function's), and the conversation's context read from its state."""
        if not isinstance(tool_input, dict) or not _asks_for_runtime(self.func):
            return tool_input, None
        arguments = dict(tool_input)
        runtime = arguments.pop(_RUNTIME, None)
        if runtime is None:
            return tool_input, None
        return arguments, context_for(messages_of(getattr(runtime, "state", None)), tool_call_id)


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
        with request_context_scope(_CONTEXT.get()):
            return spec.run(arguments, call_id=_TOOL_CALL_ID.get())

    async def arun(**arguments: Any) -> Any:
        with request_context_scope(_CONTEXT.get()):
            return await spec.arun(arguments, call_id=_TOOL_CALL_ID.get())

    runtime_type = _tool_runtime()
    if runtime_type is not None and _RUNTIME not in spec.args_model.model_fields:
        # ToolNode injects the ToolRuntime into tools whose function declares it (read from the
        # annotations); FunctionLayerTool takes it out again before the arguments are checked.
        run.__annotations__[_RUNTIME] = runtime_type
        arun.__annotations__[_RUNTIME] = runtime_type
    return FunctionLayerTool(
        name=spec.name,
        description=spec.description,
        args_schema=spec.args_model,
        func=run,
        coroutine=arun,
    )


def _tool_runtime() -> type[Any] | None:
    """LangGraph's ``ToolRuntime``, or ``None`` without LangGraph (tools then carry no context)."""
    try:
        from langgraph.prebuilt import ToolRuntime
    except ImportError:
        return None
    runtime: type[Any] = ToolRuntime
    return runtime


def _asks_for_runtime(func: Any) -> bool:
    return _RUNTIME in (getattr(func, "__annotations__", None) or {})
