"""FunctionLayer functions as native ControlFlow tools.

All approval logic lives in ``functionlayer``; this module only maps a
``functionlayer.ToolSpec`` onto ``controlflow.tools.Tool`` (built directly:
ControlFlow's LangChain-tool conversion is broken with langchain-core 1.x) and
finds the model's tool call id so it becomes the approval's call id.

Why a frame walk: ControlFlow 0.12.1 gives a tool only its arguments
(``Tool.run(input=...)``). Its ``AgentToolCall`` event carries the model's tool
call, id included, but it goes to the run's handlers, not to the tool, and
pairing an event with the call that follows could only be done by name and
arguments: guesswork. The id is the ``tool_call`` local of ControlFlow's
``handle_tool_call``/``handle_tool_call_async`` while the tool runs, so we read
it from that frame (the core's ``functionlayer.adapters.CallIdFinder``). When
it is not found we warn once (:class:`CallIdNotFoundWarning`): the call still
works, under a fresh id, but a retried turn will ask the human again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from controlflow.tools import Tool
from controlflow.tools import tools as _cf_tools
from functionlayer import RequestContext, ToolSpec, request_context_scope, tool_spec
from functionlayer.adapters import CallIdFinder, check_plain_function

from functionlayer_controlflow._context import context_of_call

__all__ = ["CallIdNotFoundWarning", "tool", "tools"]


class CallIdNotFoundWarning(UserWarning):
    """The model's tool call id could not be found, so the approval uses a fresh id."""


def _tool_call_id(local: Mapping[str, Any]) -> object:
    tool_call = local.get("tool_call")
    return tool_call.get("id") if isinstance(tool_call, dict) else None


# ControlFlow hands a tool only the arguments; the model's call (with its id)
# is the local ``tool_call`` of these two functions while the tool runs.
_CALL_IDS = CallIdFinder(
    frozenset({_cf_tools.handle_tool_call.__code__, _cf_tools.handle_tool_call_async.__code__}),
    _tool_call_id,
    warning=CallIdNotFoundWarning,
    message=(
        "functionlayer-controlflow could not find the model's tool call id in "
        "ControlFlow {version}'s handle_tool_call (the tool ran outside "
        "ControlFlow's agent loop, or under a ControlFlow release this adapter does not "
        "know). Approvals use a fresh call id instead, so a retried turn will ask the "
        "human again. This warning is shown once per process."
    ),
    distribution="controlflow",
)


def model_call_id(depth: int = 1) -> str | None:
    """The tool call id the model gave the call ControlFlow is running now, if any.

    ``depth`` is the frame to start from (1: the caller).
    """
    return _CALL_IDS.find(depth + 1)


def _call_id_or_warn() -> str | None:
    """:func:`model_call_id` seen from the tool, warning once per process when it is missing."""
    return _CALL_IDS.find_or_warn(2, stacklevel=3)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Invoke:
    """The ``fn`` of a ControlFlow tool: validates and runs the call through the spec.

    Returns an awaitable when called inside an event loop (or for an async
    function), which ControlFlow awaits, so waiting for a human never blocks
    the loop of an async ControlFlow run.
    """

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec
        self.__name__ = spec.name
        self.__doc__ = spec.description

    def __call__(self, **arguments: Any) -> Any:
        call_id = _call_id_or_warn()
        context = context_of_call()
        if self.spec.is_async or _loop_running():
            return self._arun(arguments, call_id, context)
        with request_context_scope(context):
            return self.spec.run(arguments, call_id=call_id)

    async def _arun(
        self, arguments: dict[str, Any], call_id: str | None, context: RequestContext | None
    ) -> Any:
        with request_context_scope(context):
            return await self.spec.arun(arguments, call_id=call_id)

    def __repr__(self) -> str:
        return f"<functionlayer tool {self.spec.name}>"


def tool(fn: Callable[..., Any], **tool_options: Any) -> Tool:
    """Turn a function (guarded by ``require_approval`` or plain) into a ControlFlow ``Tool``.

    Arguments from the model are validated against the function's signature
    (a validation error reaches the model as ControlFlow's tool error);
    ``tool_options`` (for example ``instructions=``) go to ``Tool``.
    """
    check_plain_function(fn, Tool, "ControlFlow")
    spec = tool_spec(fn)
    return Tool(
        name=spec.name,
        description=spec.description,
        parameters=spec.parameters,
        fn=_Invoke(spec),
        **tool_options,
    )


def tools(fns: Iterable[Callable[..., Any]]) -> list[Tool]:
    """Turn each function into a ControlFlow tool, in order."""
    return [tool(fn) for fn in fns]
