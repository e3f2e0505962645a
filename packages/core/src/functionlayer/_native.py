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
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from functionlayer import _feedback
from functionlayer._context import group_id_for, group_scope
from functionlayer._models import FunctionCall, FunctionCallSpec, RequestContext

if TYPE_CHECKING:
    from functionlayer._client import FunctionLayer

__all__ = [
    "Claim",
    "NativeDecision",
    "PendingToolCall",
    "aask",
    "acheck",
    "aclaim",
    "acollect",
    "adecide",
    "ago_ahead",
    "areport",
    "ask",
    "await_decisions",
    "check",
    "claim",
    "collect",
    "decide",
    "decision_of",
    "edits_unsupported_message",
    "go_ahead",
    "report",
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
    context: RequestContext | None = None
    """What the agent says about the call (the user's request, the model's text before it):
    shown to the approver as the agent's untrusted words."""


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
    claim_id: str | None = field(default=None, compare=False)
    """Approved and claimed: the claim holding the execution (for :func:`report`); not part
    of what the framework is told, so not compared."""
    responded_by: str | None = field(default=None, compare=False)
    """The authenticated person who decided, as the backend recorded it (never anything the
    agent sent); ``None`` when nobody did (expiry, no decision possible, already ran)."""


@dataclass(frozen=True)
class Claim:
    """The answer to "may this approved call run now?": proceed, or the text for the model."""

    call_id: str
    fn: str
    claim_id: str | None = None
    """Set when the claim was granted: the execution is ours; report with it."""
    message: str | None = None
    """Set when it was not: "already ran" (the approval was used) or "claim failed"."""

    @property
    def proceed(self) -> bool:
        return self.claim_id is not None


def request_for(fl: FunctionLayer, call: PendingToolCall) -> FunctionCall:
    """The request to send for ``call`` (not sent yet)."""
    spec = FunctionCallSpec(
        fn=call.fn,
        kwargs=dict(call.kwargs),
        channel=fl.contact_channel,
        timeout_seconds=fl.timeout,
        description=call.description,
        context=call.context,
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
    by = None if decision.expired else decision.responded_by
    if decision.approved:
        edits = decision.edited_kwargs
        if edits is None or edits == stored.spec.kwargs:
            return NativeDecision(stored.call_id, True, responded_by=by)
        return NativeDecision(stored.call_id, True, arguments=dict(edits), responded_by=by)
    if decision.expired:
        message = _feedback.expired_message(fn, stored.spec.timeout_seconds)
    elif decision.response is not None:
        message = decision.response
    else:
        message = _feedback.rejection_message(
            fn,
            decision.comment,
            decision.reject_option_name,
            by_policy=decision.responded_via == "policy",
        )
    return NativeDecision(stored.call_id, False, message=message, responded_by=by)


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


# -- one approval, one execution ------------------------------------------------------------------


def _claimed(call_id: str, fn: str, claim_id: str, granted: bool, execution: Any) -> Claim:
    if granted:
        return Claim(call_id, fn, claim_id=claim_id)
    return Claim(call_id, fn, message=_feedback.already_ran_message(fn, call_id, execution))


def _claim_failed(call_id: str, fn: str, exc: Exception) -> Claim:
    reason = f"{type(exc).__name__}: {exc}"
    return Claim(call_id, fn, message=_feedback.claim_failed_message(fn, reason, call_id))


def claim(fl: FunctionLayer, call_id: str, fn: str) -> Claim:
    """Claim the one execution the approved call ``call_id`` authorises, just before letting
    something run it. Never raises: a claim that cannot be recorded is a refusal (fail closed)."""
    from functionlayer._client import _new_id

    claim_id = _new_id()
    try:
        got = fl.backend.claim_execution(call_id, claim_id, claimed_by=fl.run_id)
    except Exception as exc:
        return _claim_failed(call_id, fn, exc)
    return _claimed(call_id, fn, claim_id, got.granted, got.execution)


async def aclaim(fl: FunctionLayer, call_id: str, fn: str) -> Claim:
    """The async :func:`claim`."""
    from functionlayer._client import _new_id

    claim_id = _new_id()
    try:
        got = await fl.backend.aclaim_execution(call_id, claim_id, claimed_by=fl.run_id)
    except Exception as exc:
        return _claim_failed(call_id, fn, exc)
    return _claimed(call_id, fn, claim_id, got.granted, got.execution)


def _execution_report(
    fl: FunctionLayer, granted: Claim, value: Any, raised: bool, redact: Any
) -> Any:
    from functionlayer._execution import summarize
    from functionlayer._models import ExecutionReport

    if granted.claim_id is None:
        raise ValueError(f"the claim on {granted.call_id!r} was not granted: nothing to report")
    return ExecutionReport(
        claim_id=granted.claim_id,
        outcome="raised" if raised else "returned",
        summary=summarize(
            value, raised=raised, redact=redact if redact is not None else fl.redact_outcome
        ),
    )


def report(
    fl: FunctionLayer,
    granted: Claim,
    value: Any,
    *,
    raised: bool = False,
    redact: Callable[[Any], str] | None = None,
) -> None:
    """Record how a granted claim's execution ended: what it returned (or the exception it
    raised), summarised through ``redact`` (default: the client's ``redact_outcome``, else the
    repr). Best effort: a failure is logged and the execution stays "outcome unknown"."""
    from functionlayer._client import _log_report_failure

    outcome = _execution_report(fl, granted, value, raised, redact)
    try:
        fl.backend.report_execution(granted.call_id, outcome)
    except Exception as exc:
        _log_report_failure(granted.fn, granted.call_id, exc)


async def areport(
    fl: FunctionLayer,
    granted: Claim,
    value: Any,
    *,
    raised: bool = False,
    redact: Callable[[Any], str] | None = None,
) -> None:
    """The async :func:`report`."""
    from functionlayer._client import _log_report_failure

    outcome = _execution_report(fl, granted, value, raised, redact)
    try:
        await fl.backend.areport_execution(granted.call_id, outcome)
    except Exception as exc:
        _log_report_failure(granted.fn, granted.call_id, exc)


_Subject = PendingToolCall | FunctionCall


def _subjects(calls: Iterable[_Subject]) -> dict[str, tuple[str, dict[str, Any]]]:
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for call in calls:
        if isinstance(call, FunctionCall):
            found[call.call_id] = (call.spec.fn, call.spec.kwargs)
        else:
            found[call.call_id] = (call.fn, call.kwargs)
    return found


def _before_claim(
    decision: NativeDecision, subject: tuple[str, dict[str, Any]], edits: bool
) -> NativeDecision | None:
    """The decision as it stands without a claim, or ``None`` when it needs one."""
    if not decision.approved:
        return decision
    if decision.arguments is not None and not edits:
        fn, proposed = subject
        message = edits_unsupported_message(fn, proposed, decision.arguments)
        return NativeDecision(decision.call_id, False, message=message)
    return None


def _after_claim(decision: NativeDecision, got: Claim) -> NativeDecision:
    if got.proceed:
        return dataclasses.replace(decision, claim_id=got.claim_id)
    return NativeDecision(decision.call_id, False, message=got.message)


def go_ahead(
    fl: FunctionLayer,
    decisions: Mapping[str, NativeDecision],
    calls: Iterable[_Subject],
    *,
    edits: bool = True,
) -> dict[str, NativeDecision]:
    """Turn approvals into "go ahead": claim each approved call's execution. An approval whose
    execution was already claimed (or cannot be claimed) becomes a denial whose message the
    model gets. ``calls`` names each call's function and proposed arguments; ``edits=False``
    (the framework cannot run other arguments) denies approvals with edits without claiming."""
    subjects = _subjects(calls)
    settled: dict[str, NativeDecision] = {}
    for call_id, decision in decisions.items():
        subject = subjects[call_id]
        done = _before_claim(decision, subject, edits)
        settled[call_id] = (
            done if done is not None else _after_claim(decision, claim(fl, call_id, subject[0]))
        )
    return settled


async def ago_ahead(
    fl: FunctionLayer,
    decisions: Mapping[str, NativeDecision],
    calls: Iterable[_Subject],
    *,
    edits: bool = True,
) -> dict[str, NativeDecision]:
    """The async :func:`go_ahead`."""
    subjects = _subjects(calls)
    settled: dict[str, NativeDecision] = {}
    for call_id, decision in decisions.items():
        subject = subjects[call_id]
        done = _before_claim(decision, subject, edits)
        if done is None:
            done = _after_claim(decision, await aclaim(fl, call_id, subject[0]))
        settled[call_id] = done
    return settled


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
