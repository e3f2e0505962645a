"""FunctionLayer functions as Haystack ``Tool``s.

All approval logic lives in ``functionlayer``: this module maps a ``ToolSpec`` onto
``haystack.tools.Tool`` (``function`` for ``Agent.run``, ``async_function`` for
``Agent.run_async``) and finds the model's tool call id so it becomes the approval's call id.

How the id gets here: Haystack's Agent hands a tool only its arguments, never the ``ToolCall``.
But while the tools of a step run, the Agent's ``State`` holds the pending assistant message
with those ``ToolCall``s (ids included) as its last message, and a tool may ask for any State key
with ``inputs_from_state``. Each tool built here asks for ``messages`` (under a parameter name the
model never sees) and picks, from the last message, the call with its own name and arguments.
It only reads that key, so Haystack still runs the calls of a step in parallel. When several
calls of one step have the same name and arguments, they take those calls' ids in order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from functionlayer import ToolSpec, request_context_scope, tool_spec
from functionlayer.adapters import OnceWarning, check_plain_function, run_to_completion
from haystack.dataclasses import ChatMessage
from haystack.tools.tool import Tool

from functionlayer_haystack._context import context_of

__all__ = ["MESSAGES_PARAMETER", "model_call_id", "tool", "tools"]

_T = TypeVar("_T")

#: The parameter through which a FunctionLayer tool receives the Agent's messages (from State).
MESSAGES_PARAMETER = "functionlayer_agent_messages"

# Identical calls of one step (same tool, same arguments) take their ids in order. Keyed by the
# ids of such a group; a few recent groups are enough, since a step's calls start together.
_CLAIMS: OrderedDict[tuple[str, ...], int] = OrderedDict()
_CLAIMS_LOCK = threading.Lock()
_MAX_CLAIM_GROUPS = 256
_WARNING = OnceWarning(RuntimeWarning)


def _warn_once(reason: str) -> None:
    _WARNING.call_id_missing("functionlayer_haystack", reason, "haystack-ai version", stacklevel=3)


def model_call_id(
    name: str, arguments: Mapping[str, Any], messages: Sequence[ChatMessage] | None
) -> str | None:
    """The id of the model's call to ``name`` with ``arguments`` among the Agent's pending calls.

    ``messages`` is the Agent's conversation (its last message holds the calls being run), or
    ``None`` when the tool is invoked directly: the core then picks a fresh id.
    """
    if messages is None:
        return None
    pending = messages[-1].tool_calls if messages else []
    ids = [
        call.id
        for call in pending
        if call.tool_name == name
        and call.id
        and all(arguments.get(key, _MISSING) == value for key, value in call.arguments.items())
    ]
    if not ids:
        _warn_once(f"no pending tool call named {name!r} has these arguments")
        return None
    if len(ids) == 1:
        return ids[0]
    key = tuple(ids)
    with _CLAIMS_LOCK:
        taken = _CLAIMS.pop(key, 0)
        _CLAIMS[key] = (taken + 1) % len(ids)  # a re-run of the same step starts over
        while len(_CLAIMS) > _MAX_CLAIM_GROUPS:
            _CLAIMS.popitem(last=False)
    return ids[taken]


_MISSING = object()


def tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    **tool_options: Any,
) -> Tool:
    """Turn ``fn`` (guarded by ``fl.require_approval()``, plain, or ``fl.human_as_tool()``) into a
    Haystack ``Tool`` with its name, docstring and argument schema.

    The tool has both ``function`` and ``async_function``, so ``Agent.run`` and
    ``Agent.run_async`` both work, for sync and ``async def`` functions alike. A rejected call
    returns the human's feedback as the tool result, so the agent loop goes on.
    ``tool_options`` go to ``Tool`` (e.g. ``outputs_to_state``).
    """
    check_plain_function(fn, Tool, "Haystack")
    return _build(tool_spec(fn, name=name, description=description), tool_options)


def tools(fns: Iterable[Callable[..., Any]]) -> list[Tool]:
    """:func:`tool` for each function, in order."""
    return [tool(fn) for fn in fns]


def _build(spec: ToolSpec, options: dict[str, Any]) -> Tool:
    def run(functionlayer_agent_messages: list[ChatMessage] | None = None, **arguments: Any) -> Any:
        call_id = model_call_id(spec.name, arguments, functionlayer_agent_messages)
        with request_context_scope(context_of(functionlayer_agent_messages)):
            if spec.is_async:
                return run_to_completion(spec.arun(arguments, call_id=call_id))
            return spec.run(arguments, call_id=call_id)

    async def arun(
        functionlayer_agent_messages: list[ChatMessage] | None = None, **arguments: Any
    ) -> Any:
        call_id = model_call_id(spec.name, arguments, functionlayer_agent_messages)
        with request_context_scope(context_of(functionlayer_agent_messages)):
            return await spec.arun(arguments, call_id=call_id)

    inputs_from_state = {"messages": MESSAGES_PARAMETER, **options.pop("inputs_from_state", {})}
    return Tool(
        name=spec.name,
        description=spec.description,
        parameters=spec.parameters,
        function=run,
        async_function=arun,
        inputs_from_state=inputs_from_state,
        **options,
    )
