"""Pydantic AI's own approval pause, decided through FunctionLayer.

A tool declared with ``requires_approval=True`` (or raising ``ApprovalRequired``) makes a run
end with ``DeferredToolRequests``; the next run takes ``DeferredToolResults``. This module turns
the requests into FunctionLayer requests (the tool call id is the call id) and the decisions
into results: ``True`` for an approval, ``ToolApproved(override_args=...)`` for an approval with
edits, ``ToolDenied(message)`` with the human's feedback (or answer, or why nothing ran).

Three ways in:

- :func:`approval_handler` for ``Agent(capabilities=[...])``: the run waits for the humans and
  goes on by itself (Pydantic AI's ``HandleDeferredToolCalls``);
- :func:`decide` / :func:`adecide`: wait, then pass the results to the next run yourself;
- :func:`pause` now, :func:`collect` later (another process, another day): the requests are
  created and the run's messages saved; nothing blocks.

What to ask, how to read the answer, and claiming the one execution an approval authorises are
the core's (``functionlayer.adapters``); this module only translates. An approval is claimed when
it becomes ``True`` / ``ToolApproved`` here, so resuming the same pause twice runs the tool once:
the second time the call is denied with "already ran".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functionlayer import FunctionCall, FunctionLayer, RequestContext, adapters
from functionlayer.adapters import NativeDecision, PendingToolCall
from pydantic_ai import RunContext
from pydantic_ai.capabilities import HandleDeferredToolCalls
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved, ToolDenied

__all__ = [
    "PausedRun",
    "acollect",
    "adecide",
    "apause",
    "approval_handler",
    "collect",
    "decide",
    "pause",
]

_FORMAT = "functionlayer-pydantic-ai/paused-run@1"


def _pending(
    part: ToolCallPart,
    descriptions: Mapping[str, str | None] | None = None,
    messages: Sequence[ModelMessage] | None = None,
) -> PendingToolCall:
    return PendingToolCall(
        call_id=part.tool_call_id,
        fn=part.tool_name,
        kwargs=part.args_as_dict(raise_if_invalid=False),
        # The tool's docstring, as the model saw it: the approver reads it too.
        description=(descriptions or {}).get(part.tool_name),
        context=_context(part.tool_call_id, messages or ()),
    )


def _descriptions(source: Any) -> dict[str, str | None]:
    """Tool name -> description, from a ``RunContext`` (the run's tools) or an ``Agent``
    (its function toolsets); empty when neither is given."""
    found: dict[str, str | None] = {}
    manager = getattr(source, "tool_manager", None)
    for name, item in (getattr(manager, "tools", None) or {}).items():
        definition = getattr(item, "tool_def", None)
        found[name] = getattr(definition, "description", None)
    for toolset in getattr(source, "toolsets", None) or ():
        for name, item in (getattr(toolset, "tools", None) or {}).items():
            found.setdefault(name, getattr(item, "description", None))
    return found


def _user_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [c for c in content if isinstance(c, str)]
        return "\n".join(texts) or None
    return None


def _context(call_id: str, messages: Sequence[ModelMessage]) -> RequestContext | None:
    """The last user prompt before the model's response that holds ``call_id``, and that
    response's text: the agent's words, for the approver (never trusted)."""
    reason = None
    user = None
    found = False
    for message in reversed(messages):
        if not found and isinstance(message, ModelResponse):
            calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
            if any(p.tool_call_id == call_id for p in calls):
                found = True
                texts = [p.content for p in message.parts if isinstance(p, TextPart)]
                reason = "\n".join(t for t in texts if t) or None
        elif found and isinstance(message, ModelRequest):
            prompts = [p for p in message.parts if isinstance(p, UserPromptPart)]
            if prompts:
                user = _user_text(prompts[-1].content)
                break
    return RequestContext.bounded(user_request=user, reason=reason)


def _messages_of(source: Any) -> list[ModelMessage]:
    all_messages = getattr(source, "all_messages", None)
    if callable(all_messages):
        return list(all_messages())
    return list(getattr(source, "messages", None) or [])


def _requests_of(source: Any) -> DeferredToolRequests:
    output = getattr(source, "output", source)
    if not isinstance(output, DeferredToolRequests):
        raise TypeError(
            "expected DeferredToolRequests or a run result whose output is one (give the agent "
            f"output_type=[..., DeferredToolRequests]), got {type(output).__name__}"
        )
    return output


def _results(decisions: Mapping[str, NativeDecision]) -> DeferredToolResults:
    approvals: dict[str, bool | ToolApproved | ToolDenied] = {}
    for call_id, decision in decisions.items():
        if decision.approved and decision.arguments is not None:
            approvals[call_id] = ToolApproved(override_args=decision.arguments)
        elif decision.approved:
            approvals[call_id] = True
        else:
            approvals[call_id] = ToolDenied(decision.message or "The tool call was denied.")
    return DeferredToolResults(approvals=approvals)


# -- waiting --------------------------------------------------------------------------------------


def _calls(
    requests: Any, agent: Any, messages: Sequence[ModelMessage] | None = None
) -> list[PendingToolCall]:
    descriptions = _descriptions(agent)
    history = messages if messages is not None else _messages_of(requests)
    return [_pending(part, descriptions, history) for part in _requests_of(requests).approvals]


def decide(
    fl: FunctionLayer, requests: Any, *, timeout: float | None = None, agent: Any = None
) -> DeferredToolResults:
    """Ask about every call in ``requests.approvals`` and wait for the decisions.

    ``requests`` is ``DeferredToolRequests`` or a run result whose output is one (then the
    approver also reads the user's prompt and the model's text before the call, labelled as
    the agent's). ``agent``: the ``Agent``, so the approver reads each tool's docstring. Fails
    closed: a call that cannot be decided (server down, timeout) is denied with the reason.
    External calls (``requests.calls``) are left to you.
    """
    return _results(adapters.decide(fl, _calls(requests, agent), timeout=timeout))


async def adecide(
    fl: FunctionLayer, requests: Any, *, timeout: float | None = None, agent: Any = None
) -> DeferredToolResults:
    """The async :func:`decide`; the calls wait concurrently."""
    return _results(await adapters.adecide(fl, _calls(requests, agent), timeout=timeout))


def approval_handler(
    fl: FunctionLayer, *, timeout: float | None = None
) -> HandleDeferredToolCalls[Any]:
    """A capability deciding the run's approval-requiring calls through FunctionLayer inline.

    ``Agent(..., capabilities=[approval_handler(fl)])``: the run waits for each decision and goes
    on; denied calls return the human's feedback to the model. External calls are declined
    (they still end the run as ``DeferredToolRequests``).
    """

    async def handle(
        ctx: RunContext[Any], requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        if not requests.approvals:
            return None
        # The run's own tools (their docstrings) and messages (the user's prompt, the model's
        # text before the call) go to the approver with each request.
        calls = _calls(requests, ctx, list(ctx.messages or []))
        return _results(await adapters.adecide(fl, calls, timeout=timeout))

    return HandleDeferredToolCalls(handler=handle)


# -- pause now, resume later ----------------------------------------------------------------------


@dataclass(frozen=True)
class PausedRun:
    """What to keep between :func:`pause` and :func:`collect`: the run's messages and its calls
    waiting for a human. ``to_json()`` / ``PausedRun.from_json()`` make it a string to store."""

    messages: bytes
    """The run's whole message history, as ``result.all_messages_json()`` gives it."""
    requests: Sequence[FunctionCall] = field(default_factory=tuple)
    """The FunctionLayer requests as sent, one per call awaiting approval."""

    @property
    def call_ids(self) -> list[str]:
        return [request.call_id for request in self.requests]

    @property
    def message_history(self) -> list[ModelMessage]:
        """Pass as ``message_history=`` to the run that resumes."""
        return ModelMessagesTypeAdapter.validate_json(self.messages)

    def to_json(self) -> str:
        fields = {"messages": json.loads(self.messages)}
        return adapters.dump_pause(_FORMAT, fields, self.requests)

    @classmethod
    def from_json(cls, data: str | bytes) -> PausedRun:
        loaded, requests = adapters.load_pause(data, _FORMAT, "Pydantic AI")
        return cls(messages=json.dumps(loaded["messages"]).encode(), requests=requests)


def _paused_calls(result: Any, agent: Any) -> list[PendingToolCall]:
    requests = _requests_of(result)
    if requests is result or not hasattr(result, "all_messages_json"):
        raise TypeError("pause() needs the run result (for its messages), not only its output")
    return _calls(result, agent)


def pause(fl: FunctionLayer, result: Any, *, agent: Any = None) -> PausedRun:
    """Create a FunctionLayer request for each call awaiting approval in ``result`` (a run whose
    output is ``DeferredToolRequests``) without waiting; returns what to save. ``agent``: the
    ``Agent``, so the approver reads each tool's docstring."""
    sent = adapters.ask(fl, _paused_calls(result, agent))
    return PausedRun(messages=result.all_messages_json(), requests=tuple(sent))


async def apause(fl: FunctionLayer, result: Any, *, agent: Any = None) -> PausedRun:
    sent = await adapters.aask(fl, _paused_calls(result, agent))
    return PausedRun(messages=result.all_messages_json(), requests=tuple(sent))


def collect(
    fl: FunctionLayer, paused: PausedRun, *, wait: bool = False, timeout: float | None = None
) -> DeferredToolResults | None:
    """The decisions for a :class:`PausedRun`, as ``DeferredToolResults`` for the next run
    (``message_history=paused.message_history, deferred_tool_results=...``).

    ``wait=False`` returns ``None`` while any call is still pending; ``wait=True`` blocks until
    all are decided (``timeout`` bounds each wait; expiry rejects). Raises a
    :class:`~functionlayer.FunctionLayerError` when the decisions cannot be read: nothing is
    decided then, and you can try again later.

    Each approval is claimed here (one approval, one execution): collecting the same pause again
    denies the calls that were already approved once, and the model reads that they already ran.
    """
    decisions = adapters.collect(fl, paused.requests, wait=wait, timeout=timeout)
    return None if decisions is None else _results(decisions)


async def acollect(
    fl: FunctionLayer, paused: PausedRun, *, wait: bool = False, timeout: float | None = None
) -> DeferredToolResults | None:
    """The async :func:`collect`."""
    decisions = await adapters.acollect(fl, paused.requests, wait=wait, timeout=timeout)
    return None if decisions is None else _results(decisions)
