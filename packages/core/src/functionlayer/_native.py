"""Human decisions for a framework's own approval pause, for adapters to translate.

Pydantic AI (``requires_approval=True`` → ``DeferredToolRequests``) and the OpenAI Agents SDK
(``needs_approval=True`` → ``result.interruptions``) stop a run at tool calls that need approval
and resume it once each call is approved or denied. Their adapters turn those paused calls into
:class:`PendingToolCall` and ask here; everything about asking, waiting, expiry, and what the
model is told lives in this module and the client, so the adapters only map a
:class:`NativeDecision` onto their framework's approve/deny types.

- :func:`ask` creates the requests without waiting (pause now) and returns them, to be saved;
- :func:`check` reads the saved requests' decisions without waiting (``None``: still pending);
- :func:`wait` blocks until every saved request is decided (or expires, which rejects it);
- :func:`decide` asks and waits in one go, failing closed: a call with no possible decision
  is denied with a message for the model instead of raising.

Async twins: :func:`aask`, :func:`acheck`, :func:`await_decisions`, :func:`adecide`. The framework's tool call id is the request's call id,
so asking again (a retried or resumed run) reuses the request and its decision.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from functionlayer import _feedback
from functionlayer._models import FunctionCall, FunctionCallSpec

if TYPE_CHECKING:
    from functionlayer._client import FunctionLayer

__all__ = [
    "NativeDecision",
    "PendingToolCall",
    "aask",
    "acheck",
    "adecide",
    "ask",
    "await_decisions",
    "check",
    "decide",
    "decision_of",
    "edits_unsupported_message",
    "request_for",
    "wait",
]


@dataclass(frozen=True)
class PendingToolCall:
    """A tool call a framework paused for approval."""

    call_id: str
    """The model's tool call id: the approval request's call id."""
    fn: str
    """The tool's name."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """The arguments the model proposed (a JSON object)."""
    description: str | None = None
    """The tool's description, shown to the approver."""


@dataclass(frozen=True)
class NativeDecision:
    """What to tell the framework about one paused call."""

    call_id: str
    approved: bool
    """Run the tool (``True``) or deny the call (``False``)."""
    arguments: dict[str, Any] | None = None
    """Approved with edits: run with exactly these arguments instead of the proposed ones."""
    message: str | None = None
    """Denied: the tool result the model gets (the human's feedback, answer, or why nothing ran)."""


def request_for(fl: FunctionLayer, call: PendingToolCall) -> FunctionCall:
    """The request to send for ``call`` (not sent yet)."""
    spec = FunctionCallSpec(
        fn=call.fn,
        kwargs=dict(call.kwargs),
        channel=fl.contact_channel,
        timeout_seconds=fl.timeout,
        description=call.description,
    )
    return FunctionCall(run_id=fl.run_id, call_id=call.call_id, spec=spec)


def _as_sent(fl: FunctionLayer, request: FunctionCall) -> FunctionLayer:
    # The server keeps a request's run id: waiting again (create is idempotent) must send the
    # very same request, so a resuming process waits under the pausing process's run id.
    if request.run_id == fl.run_id:
        return fl
    clone = copy.copy(fl)
    clone.run_id = request.run_id
    return clone


def decision_of(stored: FunctionCall) -> NativeDecision | None:
    """The decision recorded on ``stored``, or ``None`` while it is pending."""
    if not stored.completed:
        return None
    decision = stored.as_completed()
    fn = stored.spec.fn
    if decision.approved:
        edits = decision.edited_kwargs
        if edits is None or edits == stored.spec.kwargs:
            return NativeDecision(stored.call_id, True)
        return NativeDecision(stored.call_id, True, arguments=dict(edits))
    if decision.expired:
        message = _feedback.expired_message(fn, stored.spec.timeout_seconds)
    elif decision.response is not None:
        message = decision.response
    else:
        message = _feedback.rejection_message(fn, decision.comment, decision.reject_option_name)
    return NativeDecision(stored.call_id, False, message=message)


def _failed(call: PendingToolCall, exc: Exception) -> NativeDecision:
    reason = f"{type(exc).__name__}: {exc}"
    return NativeDecision(
        call.call_id, False, message=_feedback.not_run_message(call.fn, reason, call.call_id)
    )


def edits_unsupported_message(fn: str, proposed: dict[str, Any], edited: dict[str, Any]) -> str:
    """The human approved with edits the framework cannot apply: nothing runs; say so."""
    import json

    return (
        f"{fn} was not run: the human approved it only with edited arguments "
        f"{json.dumps(edited, sort_keys=True, default=repr)} instead of the proposed "
        f"{json.dumps(proposed, sort_keys=True, default=repr)}, and this agent framework cannot "
        f"apply edited arguments. Nothing was done; call {fn} again with the edited arguments "
        "if they suit the task."
    )


# -- sync -----------------------------------------------------------------------------------------


def ask(fl: FunctionLayer, calls: Iterable[PendingToolCall]) -> list[FunctionCall]:
    """Create a request for each call without waiting (idempotent per call id); returns the
    requests as sent, to save for :func:`check` / :func:`wait`."""
    sent = [request_for(fl, call) for call in calls]
    for request in sent:
        fl.create_function_call(request.spec, request.call_id, run_id=request.run_id)
    return sent


def check(fl: FunctionLayer, requests: Iterable[FunctionCall]) -> dict[str, NativeDecision | None]:
    """Each saved request's decision so far, without waiting (``None``: still pending).

    Raises a :class:`~functionlayer.FunctionLayerError` when the server cannot be read or holds
    a different request under a call id; nothing is decided then, so the caller can retry.
    """
    from functionlayer._client import _check_same_request

    return {
        request.call_id: decision_of(
            _check_same_request(request, fl.get_function_call(request.call_id))
        )
        for request in requests
    }


def _wait_one(fl: FunctionLayer, request: FunctionCall, timeout: float | None) -> NativeDecision:
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    stored = _as_sent(fl, request).fetch_approval(request.spec, request.call_id, **kwargs)
    decided = decision_of(stored)
    assert decided is not None  # fetch_approval returns decided (or expired) calls only
    return decided


def wait(
    fl: FunctionLayer, requests: Iterable[FunctionCall], *, timeout: float | None = None
) -> dict[str, NativeDecision]:
    """Block until every saved request is decided; expiry rejects. ``timeout`` bounds each
    wait (default: the request's own, else the client's). Raises when no decision can be had."""
    return {request.call_id: _wait_one(fl, request, timeout) for request in requests}


def decide(
    fl: FunctionLayer, calls: Iterable[PendingToolCall], *, timeout: float | None = None
) -> dict[str, NativeDecision]:
    """Ask about each call and wait, failing closed per call: no decision means denied."""
    decisions: dict[str, NativeDecision] = {}
    for call in calls:
        try:
            decisions[call.call_id] = _wait_one(fl, request_for(fl, call), timeout)
        except Exception as exc:  # fail closed, as a guarded function does
            decisions[call.call_id] = _failed(call, exc)
    return decisions


# -- async ----------------------------------------------------------------------------------------


async def aask(fl: FunctionLayer, calls: Iterable[PendingToolCall]) -> list[FunctionCall]:
    sent = [request_for(fl, call) for call in calls]
    for request in sent:
        await fl.acreate_function_call(request.spec, request.call_id, run_id=request.run_id)
    return sent


async def acheck(
    fl: FunctionLayer, requests: Iterable[FunctionCall]
) -> dict[str, NativeDecision | None]:
    from functionlayer._client import _check_same_request

    decisions: dict[str, NativeDecision | None] = {}
    for request in requests:
        stored = await fl.aget_function_call(request.call_id)
        decisions[request.call_id] = decision_of(_check_same_request(request, stored))
    return decisions


async def _await_one(
    fl: FunctionLayer, request: FunctionCall, timeout: float | None
) -> NativeDecision:
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    stored = await _as_sent(fl, request).afetch_approval(request.spec, request.call_id, **kwargs)
    decided = decision_of(stored)
    assert decided is not None
    return decided


async def await_decisions(
    fl: FunctionLayer, requests: Iterable[FunctionCall], *, timeout: float | None = None
) -> dict[str, NativeDecision]:
    """The async :func:`wait`: the requests wait concurrently; raises if any has no decision."""
    pending = list(requests)
    results = await asyncio.gather(
        *(_await_one(fl, request, timeout) for request in pending), return_exceptions=True
    )
    decisions: dict[str, NativeDecision] = {}
    for request, result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            raise result
        decisions[request.call_id] = result
    return decisions


async def adecide(
    fl: FunctionLayer, calls: Iterable[PendingToolCall], *, timeout: float | None = None
) -> dict[str, NativeDecision]:
    """The async :func:`decide`: concurrent waits, each failing closed on its own."""
    pending = list(calls)
    results = await asyncio.gather(
        *(_await_one(fl, request_for(fl, call), timeout) for call in pending),
        return_exceptions=True,
    )
    decisions: dict[str, NativeDecision] = {}
    for call, result in zip(pending, results, strict=True):
        if isinstance(result, NativeDecision):
            decisions[call.call_id] = result
        elif isinstance(result, Exception):
            decisions[call.call_id] = _failed(call, result)
        else:
            raise result  # CancelledError, KeyboardInterrupt: not a missing decision
    return decisions
