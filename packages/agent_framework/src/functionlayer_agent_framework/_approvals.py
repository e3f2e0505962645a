"""Agent Framework's own tool approvals, decided through FunctionLayer.

A tool declared with ``approval_mode="always_require"`` makes ``agent.run(...)`` stop at the
model's calls to it: ``response.user_input_requests`` holds a ``function_approval_request``
per call, and the next ``agent.run(Message(role="user", contents=[request
.to_function_approval_response(approved)]), session=session)`` goes on. This module asks
FunctionLayer about each request (the model's function-call id is the call id) and answers it.

- :func:`arun`: run the agent and answer every approval request inline, until the run ends;
- :func:`adecide`: wait for the humans and get the message of approval responses to send;
- :func:`apause` now, :func:`aresume` later (another process): the requests are created and
  the session (``AgentSession.to_dict()``) saved with the pending requests; nothing blocks.

What the framework gets: approved → ``approved=True``; anything else → ``approved=False``
(the framework then tells the model its own "rejected by user" text; it carries no message, so
the human's feedback stays in FunctionLayer's record). The framework cannot run other
arguments than the model's, so an approval with edits is a decline. A call to a tool the agent
marks ``never_require`` that the framework surfaced anyway (a mixed batch run without a
session, or an older release that asks about every call of the batch) is answered
``approved=True`` without asking anyone: its author said it needs no approval. Requests that
share one function-call id (a model may repeat an id) are all declined and nobody is asked: one
approval could not say which call it is for.

One approval, one execution: each approval is claimed when it becomes ``approved=True`` (by
:func:`adecide`, :func:`arun` and :func:`aresume`); resuming the same saved pause twice runs an
approved body once, the second time the call is declined. A resume the framework does not act
on (another session, a session without the recorded requests) raises
:class:`ResumeNotAppliedError` instead of going on silently. What to ask, how to read the answer
and the claim are the core's (``functionlayer.adapters``). Each request carries the run's context
for the approver (``_context``: the model's text, the user's last message).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_framework import AgentSession, Content, Message
from functionlayer import FunctionCall, FunctionLayer, FunctionLayerError, RequestContext, adapters
from functionlayer.adapters import NativeDecision, PendingToolCall

from functionlayer_agent_framework._context import request_contexts

__all__ = ["PausedRun", "ResumeNotAppliedError", "adecide", "apause", "aresume", "arun"]

_FORMAT = "functionlayer-agent-framework/paused-run@1"
_APPROVAL_REQUEST = "function_approval_request"


class ResumeNotAppliedError(FunctionLayerError):
    """The framework did not act on the approval responses sent to it: nothing was decided for
    those calls in the run. Raised instead of letting a resume pass silently."""


# -- reading the framework's requests -------------------------------------------------------------


def _agent_tools(agent: Any, tools: Iterable[Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    options = getattr(agent, "default_options", None)
    declared = options.get("tools") if isinstance(options, Mapping) else None
    for candidate in [*(declared or []), *(tools or [])]:
        name = getattr(candidate, "name", None)
        if isinstance(name, str):
            found[name] = candidate
    return found


def _approval_requests(response: Any) -> list[Content]:
    requests = getattr(response, "user_input_requests", None)
    if requests is None:
        raise TypeError(f"expected an Agent Framework run response, got {type(response).__name__}")
    return [
        content
        for content in requests
        if content.type == _APPROVAL_REQUEST and content.function_call is not None
    ]


def _arguments(function_call: Content) -> dict[str, Any]:
    raw = function_call.arguments
    if isinstance(raw, Mapping):
        return dict(raw)
    text = raw or ""
    try:
        decoded = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"arguments": text}
    return decoded if isinstance(decoded, dict) else {"arguments": decoded}


def _pending(
    request: Content, known: Mapping[str, Any], contexts: Mapping[str, RequestContext]
) -> PendingToolCall:
    function_call = request.function_call
    assert function_call is not None
    name = str(function_call.name or "")
    if not function_call.call_id or not name:
        raise ValueError(f"an approval request without a call id or tool name: {request!r}")
    description = getattr(known.get(name), "description", None)
    return PendingToolCall(
        function_call.call_id,
        name,
        _arguments(function_call),
        description if isinstance(description, str) and description else None,
        contexts.get(function_call.call_id),
    )


def _needs_no_approval(call: PendingToolCall, known: Mapping[str, Any]) -> bool:
    """Whether the agent's own tool says so. A name the agent does not know is asked about."""
    return getattr(known.get(call.fn), "approval_mode", None) == "never_require"


@dataclass(frozen=True)
class _Batch:
    """One response's approval requests, sorted: what to ask, what needs no one."""

    requests: Sequence[Content]
    calls: Sequence[PendingToolCall]
    """One per request, in the same order."""
    asked: Sequence[PendingToolCall]
    """The calls to ask FunctionLayer about."""
    free: frozenset[int]
    """Positions of the requests the agent's own tools say need no approval."""
    ambiguous: frozenset[str]
    """Call ids more than one request uses: an approval could not say which call it is for,
    so each of them is declined and nobody is asked."""


def _batch(
    requests: Sequence[Content],
    known: Mapping[str, Any],
    contexts: Mapping[str, RequestContext] | None = None,
) -> _Batch:
    calls = [_pending(request, known, contexts or {}) for request in requests]
    counts = Counter(call.call_id for call in calls)
    ambiguous = frozenset(call_id for call_id, count in counts.items() if count > 1)
    free = frozenset(
        position
        for position, call in enumerate(calls)
        if call.call_id not in ambiguous and _needs_no_approval(call, known)
    )
    asked = [
        call
        for position, call in enumerate(calls)
        if call.call_id not in ambiguous and position not in free
    ]
    return _Batch(requests, calls, asked, free, ambiguous)


def _message(batch: _Batch, decisions: Mapping[str, NativeDecision]) -> Message:
    """The user message answering every request a decision is known for. The decisions come
    from the core with ``edits=False``: an approval here is claimed and runs the model's
    arguments, once."""
    contents: list[Content] = []
    for position, (request, call) in enumerate(zip(batch.requests, batch.calls, strict=True)):
        if call.call_id in batch.ambiguous:
            contents.append(request.to_function_approval_response(False))
        elif position in batch.free:
            contents.append(request.to_function_approval_response(True))
        elif (decision := decisions.get(call.call_id)) is not None:
            approved = decision.approved and decision.arguments is None
            contents.append(request.to_function_approval_response(approved))
    return Message(role="user", contents=contents)


def _answered(message: Message) -> list[str]:
    return [
        str(content.function_call.call_id)
        for content in message.contents
        if content.function_call is not None and content.function_call.call_id
    ]


def _check_applied(response: Any, call_ids: Sequence[str]) -> None:
    """Every answered call must show up in the resumed run: its result, or a new request."""
    seen: set[str] = set()
    for message in getattr(response, "messages", None) or []:
        for content in message.contents:
            if content.type == "function_result" and content.call_id:
                seen.add(str(content.call_id))
            elif content.type == _APPROVAL_REQUEST and content.function_call is not None:
                seen.add(str(content.function_call.call_id))
    missing = [call_id for call_id in call_ids if call_id not in seen]
    if missing:
        raise ResumeNotAppliedError(
            "Agent Framework did not act on the approval responses for call id(s) "
            f"{', '.join(missing)}: nothing ran for them and the run went on without them. "
            "Resume in the session that holds the pending requests (the one the run paused "
            "in, or PausedRun.restore_session())."
        )


async def _resume_run(
    agent: Any, message: Message, session: AgentSession | None, run_kwargs: Mapping[str, Any]
) -> Any:
    response = await agent.run(message, session=session, **run_kwargs)
    _check_applied(response, _answered(message))
    return response


# -- waiting --------------------------------------------------------------------------------------


async def adecide(
    fl: FunctionLayer,
    agent: Any,
    response: Any,
    *,
    tools: Iterable[Any] | None = None,
    timeout: float | None = None,
    session: AgentSession | None = None,
) -> Message:
    """Ask about each approval request of ``response`` (an ``agent.run`` result), wait, and
    return the user message answering them: ``await agent.run(message, session=session)``.

    ``agent`` (and ``tools``, the run's extra tools) tell which tools need no approval. Fails
    closed: a call that cannot be decided (server down, timeout) is declined. The calls wait
    concurrently. ``session`` (the run's) lets the approver see the user's last message.
    """
    contexts = await request_contexts(agent, response, session)
    batch = _batch(_approval_requests(response), _agent_tools(agent, tools), contexts)
    decisions = await adapters.adecide(fl, batch.asked, timeout=timeout, edits=False)
    return _message(batch, decisions)


async def arun(
    fl: FunctionLayer,
    agent: Any,
    messages: Any = None,
    *,
    session: AgentSession | None = None,
    tools: Iterable[Any] | None = None,
    timeout: float | None = None,
    **run_kwargs: Any,
) -> Any:
    """``agent.run(messages, session=session, **run_kwargs)``, answering every approval request
    through FunctionLayer (:func:`adecide`) and going on, until the run ends without one.

    ``session``: the conversation (default: a new ``agent.create_session()``); the framework
    keeps pending approvals there. Returns the last run's response. Raises
    :class:`ResumeNotAppliedError` if the framework ignores the answers.
    """
    if session is None:
        session = agent.create_session()
    extra = dict(run_kwargs)
    if tools is not None:
        tools = list(tools)
        extra["tools"] = tools
    response = await agent.run(messages, session=session, **extra)
    while _approval_requests(response):
        message = await adecide(fl, agent, response, tools=tools, timeout=timeout, session=session)
        response = await _resume_run(agent, message, session, extra)
    return response


# -- pause now, resume later ----------------------------------------------------------------------


@dataclass(frozen=True)
class PausedRun:
    """What to keep between :func:`apause` and :func:`aresume`: the session as
    ``AgentSession.to_dict()`` gives it, the framework's pending approval requests, and the
    FunctionLayer requests as sent. ``to_json()`` / ``PausedRun.from_json()`` make it a string
    to store."""

    session: dict[str, Any]
    approvals: Sequence[dict[str, Any]] = field(default_factory=tuple)
    """The framework's ``function_approval_request`` contents (``Content.to_dict()``)."""
    requests: Sequence[FunctionCall] = field(default_factory=tuple)
    """The FunctionLayer requests as sent, one per call that needs approval."""

    @property
    def call_ids(self) -> list[str]:
        return [request.call_id for request in self.requests]

    def restore_session(self) -> AgentSession:
        """A new ``AgentSession`` restored from the saved one."""
        return AgentSession.from_dict(json.loads(json.dumps(self.session)))

    def to_json(self) -> str:
        fields = {"session": self.session, "approvals": list(self.approvals)}
        return adapters.dump_pause(_FORMAT, fields, self.requests)

    @classmethod
    def from_json(cls, data: str | bytes) -> PausedRun:
        loaded, requests = adapters.load_pause(data, _FORMAT, "Agent Framework")
        if not isinstance(loaded.get("session"), dict):
            raise ValueError("a saved pause needs the session")
        approvals = loaded.get("approvals") or []
        if not isinstance(approvals, list) or not all(isinstance(a, dict) for a in approvals):
            raise ValueError("a saved pause's approvals must be a list of objects")
        return cls(session=loaded["session"], approvals=tuple(approvals), requests=requests)


async def apause(
    fl: FunctionLayer,
    agent: Any,
    response: Any,
    session: AgentSession,
    *,
    tools: Iterable[Any] | None = None,
) -> PausedRun:
    """Create a FunctionLayer request for each approval request of ``response`` without
    waiting; returns what to save (``paused.to_json()``). ``session`` is the one the run paused
    in: the framework keeps the pending requests there."""
    requests = _approval_requests(response)
    contexts = await request_contexts(agent, response, session)
    sent = await adapters.aask(fl, _batch(requests, _agent_tools(agent, tools), contexts).asked)
    return PausedRun(
        session=session.to_dict(),
        approvals=tuple(request.to_dict() for request in requests),
        requests=tuple(sent),
    )


def _saved_batch(paused: PausedRun, known: Mapping[str, Any]) -> _Batch:
    """The saved approval requests, each matching the FunctionLayer request sent for it: a
    pause whose tool call changed after it was sent is refused, not resumed."""
    batch = _batch([Content.from_dict(saved) for saved in paused.approvals], known)
    sent = {request.call_id: request for request in paused.requests}
    for call in batch.asked:
        request = sent.get(call.call_id)
        if request is None or (request.spec.fn, request.spec.kwargs) != (call.fn, call.kwargs):
            raise ValueError(
                f"the saved pause does not match its FunctionLayer requests (call id "
                f"{call.call_id}, {call.fn}): nothing was resumed"
            )
    return batch


async def aresume(
    fl: FunctionLayer,
    agent: Any,
    paused: PausedRun,
    *,
    wait: bool = False,
    timeout: float | None = None,
    session: AgentSession | None = None,
    tools: Iterable[Any] | None = None,
    **run_kwargs: Any,
) -> Any:
    """Resume a :class:`PausedRun` once its calls are decided: answer the framework's requests
    and run the agent on; returns that run's response, or ``None`` while any call is pending
    (``wait=False``; nothing is sent then).

    ``wait=True`` blocks until all are decided (``timeout`` bounds each wait; expiry declines).
    ``session``: where to resume (default: :meth:`PausedRun.restore_session`; pass one you
    restored yourself to keep using it). Raises a :class:`~functionlayer.FunctionLayerError`
    when the decisions cannot be read (nothing is decided then; try again later), and
    :class:`ResumeNotAppliedError` when the framework ignores the answers. Each approval is
    claimed here: resuming the same pause again declines an already approved call.
    """
    known = _agent_tools(agent, tools)
    batch = _saved_batch(paused, known)
    decisions = await adapters.acollect(
        fl, paused.requests, wait=wait, timeout=timeout, edits=False
    )
    if decisions is None:
        return None
    message = _message(batch, decisions)
    extra = dict(run_kwargs)
    if tools is not None:
        extra["tools"] = list(tools)
    return await _resume_run(agent, message, session or paused.restore_session(), extra)
