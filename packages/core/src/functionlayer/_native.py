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
- :func:`collect` reads (or waits for) every saved request's decision and claims the execution
  of each approved call: what resumes the run;
- :func:`decide` asks and waits in one go, failing closed: a call with no possible decision
  is denied with a message for the model instead of raising.

Async twins: :func:`aask`, :func:`acheck`, :func:`await_decisions`, :func:`acollect`,
:func:`adecide`. The framework's tool call id is the request's call id, so asking again (a
retried or resumed run) reuses the request and its decision.

One approval, one execution. These paths ask through FunctionLayer and let something else run
the tool (the framework, an MCP client, an upstream server), so the moment an approval becomes
"go ahead" is here: :func:`claim` claims the one execution the approval authorises. Granted:
proceed. Not granted (the approval was already used: a pause resumed twice, a repeated tool
call id): the call is denied with :func:`~functionlayer._feedback.already_ran_message`, so the
model learns it already ran. The claim cannot be recorded: denied with
:func:`~functionlayer._feedback.claim_failed_message` (fail closed). :func:`report` records how
the execution ended, where the caller can see it. :func:`decide` and :func:`collect` claim
every approval they return (:func:`go_ahead`); :func:`check` and :func:`wait` only read.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from functionlayer import _feedback
from functionlayer._context import group_id_for, group_scope
from functionlayer._ids import check_same_request
from functionlayer._models import FunctionCall
from functionlayer._native_decisions import (
    NativeDecision,
    PendingToolCall,
    ago_ahead,
    decision_of,
    go_ahead,
    request_for,
)

if TYPE_CHECKING:
    from functionlayer._client import FunctionLayer

__all__ = [
    "aask",
    "acheck",
    "acollect",
    "adecide",
    "ask",
    "await_decisions",
    "check",
    "collect",
    "decide",
    "wait",
]


def _as_sent(fl: FunctionLayer, request: FunctionCall) -> FunctionLayer:
    # The server keeps a request's run id: waiting again (create is idempotent) must send the
    # very same request, so a resuming process waits under the pausing process's run id.
    if request.run_id == fl.run_id:
        return fl
    clone = copy.copy(fl)
    clone.run_id = request.run_id
    return clone


def _failed(call: PendingToolCall, exc: Exception) -> NativeDecision:
    reason = f"{type(exc).__name__}: {exc}"
    return NativeDecision(
        call.call_id, False, message=_feedback.not_run_message(call.fn, reason, call.call_id)
    )


# -- sync -----------------------------------------------------------------------------------------


def _turn(requests: Sequence[FunctionCall]) -> contextlib.AbstractContextManager[Any]:
    """Several calls of one turn: one review group (its id derived from the call ids, so a
    resumed pause sends the same), for a person to review them together."""
    if len(requests) < 2:
        return contextlib.nullcontext()
    return group_scope(group_id_for(r.call_id for r in requests))


def ask(fl: FunctionLayer, calls: Iterable[PendingToolCall]) -> list[FunctionCall]:
    """Create a request for each call without waiting (idempotent per call id); returns the
    requests as sent, to save for :func:`check` / :func:`wait`. Several calls are one review
    group."""
    sent = [request_for(fl, call) for call in calls]
    with _turn(sent):
        for request in sent:
            fl.create_function_call(request.spec, request.call_id, run_id=request.run_id)
    return sent


def check(fl: FunctionLayer, requests: Iterable[FunctionCall]) -> dict[str, NativeDecision | None]:
    """Each saved request's decision so far, without waiting (``None``: still pending).

    Raises a :class:`~functionlayer.FunctionLayerError` when the server cannot be read or holds
    a different request under a call id; nothing is decided then, so the caller can retry.
    """
    return {
        request.call_id: decision_of(
            check_same_request(request, fl.get_function_call(request.call_id))
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


def collect(
    fl: FunctionLayer,
    requests: Iterable[FunctionCall],
    *,
    wait: bool = False,
    timeout: float | None = None,
    edits: bool = True,
) -> dict[str, NativeDecision] | None:
    """The decisions to resume a pause with, each approval claimed (:func:`go_ahead`): collecting
    the same pause twice approves each call once; the second time the model hears it already ran.

    ``wait=False`` returns ``None`` while any request is pending (nothing is claimed then);
    ``wait=True`` blocks until all are decided. Raises when the decisions cannot be read."""
    pending = list(requests)
    if wait:
        decisions = {request.call_id: _wait_one(fl, request, timeout) for request in pending}
    else:
        found = check(fl, pending)
        if any(decision is None for decision in found.values()):
            return None
        decisions = {k: v for k, v in found.items() if v is not None}
    return go_ahead(fl, decisions, pending, edits=edits)


def decide(
    fl: FunctionLayer,
    calls: Iterable[PendingToolCall],
    *,
    timeout: float | None = None,
    edits: bool = True,
) -> dict[str, NativeDecision]:
    """Ask about each call and wait, failing closed per call: no decision means denied. Each
    approval is claimed (:func:`go_ahead`)."""
    pending = list(calls)
    requests = [request_for(fl, call) for call in pending]
    decisions: dict[str, NativeDecision] = {}
    with _turn(requests):
        if len(requests) > 1:  # every request out, as one group, before the first wait
            for request in requests:
                with contextlib.suppress(Exception):  # the wait below fails closed on its own
                    fl.create_function_call(request.spec, request.call_id, run_id=request.run_id)
        for call, request in zip(pending, requests, strict=True):
            try:
                decisions[call.call_id] = _wait_one(fl, request, timeout)
            except Exception as exc:  # fail closed, as a guarded function does
                decisions[call.call_id] = _failed(call, exc)
    return go_ahead(fl, decisions, pending, edits=edits)


# -- async ----------------------------------------------------------------------------------------


async def aask(fl: FunctionLayer, calls: Iterable[PendingToolCall]) -> list[FunctionCall]:
    sent = [request_for(fl, call) for call in calls]
    with _turn(sent):
        for request in sent:
            await fl.acreate_function_call(request.spec, request.call_id, run_id=request.run_id)
    return sent


async def acheck(
    fl: FunctionLayer, requests: Iterable[FunctionCall]
) -> dict[str, NativeDecision | None]:
    decisions: dict[str, NativeDecision | None] = {}
    for request in requests:
        stored = await fl.aget_function_call(request.call_id)
        decisions[request.call_id] = decision_of(check_same_request(request, stored))
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


async def acollect(
    fl: FunctionLayer,
    requests: Iterable[FunctionCall],
    *,
    wait: bool = False,
    timeout: float | None = None,
    edits: bool = True,
) -> dict[str, NativeDecision] | None:
    """The async :func:`collect`."""
    pending = list(requests)
    if wait:
        decisions = await await_decisions(fl, pending, timeout=timeout)
    else:
        found = await acheck(fl, pending)
        if any(decision is None for decision in found.values()):
            return None
        decisions = {k: v for k, v in found.items() if v is not None}
    return await ago_ahead(fl, decisions, pending, edits=edits)


async def adecide(
    fl: FunctionLayer,
    calls: Iterable[PendingToolCall],
    *,
    timeout: float | None = None,
    edits: bool = True,
) -> dict[str, NativeDecision]:
    """The async :func:`decide`: concurrent waits, each failing closed on its own."""
    pending = list(calls)
    requests = [request_for(fl, call) for call in pending]
    with _turn(requests):  # gather copies the context: every request carries the group
        results = await asyncio.gather(
            *(_await_one(fl, request, timeout) for request in requests),
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
    return await ago_ahead(fl, decisions, pending, edits=edits)
