"""FunctionLayer functions as Microsoft Agent Framework ``FunctionTool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``agent_framework.FunctionTool`` and passes the model's function-call id to the approval
explicitly. The framework's function-calling loop hands every tool that id as
``FunctionTool.invoke(..., tool_call_id=...)``; the tool here keeps it for exactly that
invocation and runs the guarded function under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from agent_framework import FunctionTool
from functionlayer import ToolSpec, tool_spec

__all__ = ["tool", "tools"]

# The tool call id of the invocation in progress: set by ``invoke`` (which the framework calls
# with the model's id), read by the function it wraps, in the same task.
_INVOKED_CALL_ID: ContextVar[str | None] = ContextVar("functionlayer_af_call_id", default=None)


class _GuardedFunctionTool(FunctionTool):
    """A ``FunctionTool`` that runs its FunctionLayer function under the model's call id."""

    async def invoke(self, *args: Any, tool_call_id: str | None = None, **kwargs: Any) -> Any:
        token = _INVOKED_CALL_ID.set(tool_call_id)
        try:
            return await super().invoke(*args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _INVOKED_CALL_ID.reset(token)


def tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> FunctionTool:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into
    an Agent Framework ``FunctionTool`` with its name, docstring and argument schema.

    Sync and ``async def`` functions both work (a sync one waits for its human in a worker
    thread). The approval is asked under the model's function-call id; a rejected call returns
    the human's feedback as the tool result. Invalid arguments are reported to the model by the
    framework before anyone is asked. The tool itself needs no framework approval
    (``approval_mode="never_require"``): FunctionLayer is the approval.
    """
    spec = tool_spec(fn, name=name, description=description)
    return _build(spec)


def tools(fns: Iterable[Callable[..., Any]]) -> list[FunctionTool]:
    """:func:`tool` for each function: pass as ``Agent(..., tools=tools([...]))``."""
    return [tool(fn) for fn in fns]


def _build(spec: ToolSpec) -> FunctionTool:
    async def call(**arguments: Any) -> Any:
        return await spec.arun(arguments, call_id=_INVOKED_CALL_ID.get())

    call.__name__ = spec.name
    call.__doc__ = spec.description
    return _GuardedFunctionTool(
        name=spec.name,
        description=spec.description,
        func=call,
        input_model=spec.args_model,
        approval_mode="never_require",
    )
