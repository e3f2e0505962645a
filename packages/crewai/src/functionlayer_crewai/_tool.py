"""FunctionLayer functions as native CrewAI tools.

All approval logic lives in ``functionlayer``; this module only maps a
``functionlayer.ToolSpec`` onto CrewAI's ``BaseTool`` and finds the model's
tool call id so it becomes the approval's call id.

Why a frame walk: CrewAI 1.15 offers no explicit way for a tool to learn the id
of the model's tool call. Its ``before_tool_call``/``after_tool_call`` hooks get a
``ToolCallHookContext`` (tool name, input, agent, task, crew) and its
``ToolUsage*Event``s carry the tool name and arguments, but neither carries the
id; the tool itself receives only the arguments. The id is a local of the
executor function running the call, so we read it from that frame (the core's
``functionlayer.adapters.CallIdFinder``). When it is
not found we warn once (:class:`CallIdNotFoundWarning`): the call still works,
under a fresh id, but a retried turn will ask the human again.

What the approver is told about the call (``RequestContext``, the agent's untrusted words) is
the description of the task the agent is working on, read from the same executor frame (its
``task`` local, or the executor's ``task``). CrewAI keeps no text of the model's turn: its LLM
classes return only the tool calls of a response that makes them, and the executor records the
assistant message without content, so there is no stated reason to send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import CodeType
from typing import Any, TypeVar

from crewai.tools import BaseTool
from functionlayer import RequestContext, ToolSpec, request_context_scope, tool_spec
from functionlayer.adapters import CallIdFinder, check_plain_function, run_to_completion
from pydantic import ConfigDict, Field

__all__ = ["CallIdNotFoundWarning", "FunctionLayerTool", "tool", "tools"]

_T = TypeVar("_T")


def _executor_codes() -> frozenset[CodeType]:
    """Code objects of the CrewAI functions that run one native tool call.

    Each holds the model's tool call id in a local named ``call_id`` while they
    call the tool; CrewAI passes only the arguments to the tool itself.
    """
    codes: set[CodeType] = set()
    try:  # earlier 1.15 releases (1.15.3, the lowest we allow) keep it under crewai.experimental
        from crewai.experimental.agent_executor import AgentExecutor as ExperimentalExecutor

        codes.add(ExperimentalExecutor._execute_single_native_tool_call.__code__)
    except (ImportError, AttributeError):  # pragma: no cover - other crewai versions
        pass
    try:
        from crewai.agents.agent_executor import AgentExecutor

        codes.add(AgentExecutor._execute_single_native_tool_call.__code__)
    except (ImportError, AttributeError):  # pragma: no cover - other crewai versions
        pass
    try:
        from crewai.utilities import agent_utils

        codes.add(agent_utils.execute_single_native_tool_call.__code__)
    except (ImportError, AttributeError):  # pragma: no cover - other crewai versions
        pass
    return frozenset(codes)


class CallIdNotFoundWarning(UserWarning):
    """The model's tool call id could not be found, so the approval uses a fresh id."""


# The executors hold the model's tool call id in their local ``call_id`` while the tool runs.
_CALL_IDS = CallIdFinder(
    _executor_codes(),
    lambda local: local.get("call_id"),
    warning=CallIdNotFoundWarning,
    message=(
        "functionlayer-crewai could not find the model's tool call id in CrewAI "
        "{version}'s native tool-call executor (the tool ran outside a Crew's "
        "native tool-calling loop, or under a CrewAI release this adapter does not "
        "know). Approvals use a fresh call id instead, so a retried turn will ask the "
        "human again. This warning is shown once per process."
    ),
    distribution="crewai",
)


def _task_description(local: Mapping[str, Any]) -> object:
    task = local["task"] if "task" in local else getattr(local.get("self"), "task", None)
    return getattr(task, "description", None)


# The same executor frames hold the task being worked on (a local, or the executor's).
_TASKS = CallIdFinder(
    _CALL_IDS.codes,
    _task_description,
    warning=CallIdNotFoundWarning,
    message="",  # never warned about: a call without a task sends no context
    distribution="crewai",
)


def _context() -> RequestContext | None:
    """What the approver is told about the call CrewAI is running: its task's description."""
    return RequestContext.bounded(user_request=_TASKS.find(3))  # from the tool's _run/_arun


def model_call_id(depth: int = 1) -> str | None:
    """The tool call id the model gave the call CrewAI is running now, if any.

    ``None`` outside CrewAI's native tool-calling loop (direct ``tool.run``,
    text-based ReAct tools); the core then uses a fresh id. ``depth`` is the
    frame to start from (1: the caller).
    """
    return _CALL_IDS.find(depth + 1)


def _call_id_or_warn() -> str | None:
    """:func:`model_call_id` seen from the tool, warning once per process when it is missing."""
    return _CALL_IDS.find_or_warn(2, stacklevel=4)  # the caller of BaseTool.run


def _never_cache(_args: Any = None, _result: Any = None) -> bool:
    # Each call is its own decision: a cached rejection would answer a retry
    # without asking, and a cached result would pretend a guarded action ran again.
    return False


class FunctionLayerTool(BaseTool):
    """A CrewAI tool that calls a function through FunctionLayer.

    Build it with :func:`tool`. The function's name, description and argument
    schema come from ``functionlayer.tool_spec``; a guarded function asks its
    human on every call, with the model's tool call id as the approval call id.
    A rejection or a failure to get a decision reaches the model as the tool
    result; an exception raised by an approved function propagates, and CrewAI
    reports it to the model as ``Error executing tool: ...``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: ToolSpec = Field(exclude=True, repr=False)
    cache_function: Callable[..., bool] = _never_cache

    def _run(self, **kwargs: Any) -> Any:
        call_id = _call_id_or_warn()
        with request_context_scope(_context()):
            if self.spec.is_async:
                return run_to_completion(self.spec.arun(kwargs, call_id=call_id))
            return self.spec.run(kwargs, call_id=call_id)

    async def _arun(self, **kwargs: Any) -> Any:
        call_id = _call_id_or_warn()
        with request_context_scope(_context()):
            return await self.spec.arun(kwargs, call_id=call_id)


def tool(fn: Callable[..., Any], **tool_options: Any) -> FunctionLayerTool:
    """Turn a function (guarded by ``require_approval`` or plain) into a CrewAI tool.

    ``tool_options`` are passed on to CrewAI's ``BaseTool`` (for example
    ``result_as_answer=True`` or ``max_usage_count=3``).
    """
    check_plain_function(fn, BaseTool, "CrewAI")
    spec = tool_spec(fn)
    return FunctionLayerTool(
        name=spec.name,
        description=spec.description,
        args_schema=spec.args_model,
        spec=spec,
        **tool_options,
    )


def tools(fns: Iterable[Callable[..., Any]]) -> list[FunctionLayerTool]:
    """Turn each function into a CrewAI tool, in order."""
    return [tool(fn) for fn in fns]
