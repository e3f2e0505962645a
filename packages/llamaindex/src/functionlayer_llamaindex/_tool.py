"""FunctionLayer functions as LlamaIndex ``FunctionTool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``FunctionTool`` and carries the model's tool call id through to the approval's call id.

How the id gets here: LlamaIndex's agents (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``)
run every tool call in their ``call_tool`` workflow step, whose input event is a ``ToolCall``
carrying ``tool_id`` (the model's ``ToolSelection.tool_id``). The tool itself only receives the
arguments. The workflow runtime keeps the event of the step being run in a context variable
(``workflows`` ``StepWorkerStateContextVar``, the same one behind ``Context.get_step_context()``),
so the tool reads the id from there: no frame walking, and concurrent tool calls each see their
own step's event. If a release moves that variable, the adapter warns once, loudly, and the core
uses fresh call ids (approvals still work; a retried turn then asks again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from functionlayer import ToolSpec, request_context_scope, tool_spec
from functionlayer.adapters import OnceWarning, check_plain_function
from llama_index.core.tools import FunctionTool

from functionlayer_llamaindex._context import context_of_step

__all__ = ["tool", "tools"]


def _step_state_var() -> ContextVar[Any] | None:
    try:
        from workflows.runtime.types.results import StepWorkerStateContextVar
    except ImportError:  # pragma: no cover - another llama-index-workflows layout
        return None
    return StepWorkerStateContextVar


_STEP_STATE = _step_state_var()
_WARNING = OnceWarning(RuntimeWarning)


def _warn_once(reason: str) -> None:
    versions = "llama-index-core and llama-index-workflows versions"
    _WARNING.call_id_missing("functionlayer_llamaindex", reason, versions, stacklevel=3)


def model_call_id() -> str | None:
    """The id the model gave the tool call LlamaIndex's agent is running now, if any.

    ``None`` outside a workflow step (a direct ``tool.call(...)``): the core then picks a fresh id.
    """
    if _STEP_STATE is None:
        _warn_once("llama-index-workflows no longer exposes StepWorkerStateContextVar")
        return None
    step = _STEP_STATE.get(None)
    if step is None:
        return None  # not inside a workflow step: a direct call
    tool_id = getattr(getattr(step, "event", None), "tool_id", None)
    if isinstance(tool_id, str) and tool_id:
        return tool_id
    _warn_once(
        f"the workflow step runs a {type(getattr(step, 'event', None)).__name__} event, "
        "which has no tool_id"
    )
    return None


def tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    return_direct: bool = False,
) -> FunctionTool:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into a
    LlamaIndex ``FunctionTool`` with its name, docstring and argument schema.

    Sync and ``async def`` functions both work, through ``call`` and ``acall``. A rejected call
    returns the human's feedback as the tool result, so the agent loop goes on.
    """
    check_plain_function(fn, FunctionTool, "LlamaIndex")
    return _build(tool_spec(fn, name=name, description=description), return_direct)


def tools(fns: Iterable[Callable[..., Any]]) -> list[FunctionTool]:
    """:func:`tool` for each function, in order."""
    return [tool(fn) for fn in fns]


def _build(spec: ToolSpec, return_direct: bool) -> FunctionTool:
    async def arun(**arguments: Any) -> Any:
        with request_context_scope(await context_of_step()):
            return await spec.arun(arguments, call_id=model_call_id())

    def run(**arguments: Any) -> Any:
        return spec.run(arguments, call_id=model_call_id())

    return FunctionTool.from_defaults(
        # An async function gets no sync ``fn``: LlamaIndex then runs ``arun`` to completion
        # itself, on a thread of its own when a loop is already running.
        fn=None if spec.is_async else run,
        async_fn=arun,
        name=spec.name,
        description=spec.description,
        fn_schema=spec.args_model,
        return_direct=return_direct,
    )
