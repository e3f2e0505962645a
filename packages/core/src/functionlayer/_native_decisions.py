"""What one decision on a paused tool call means, and the claim that turns an approval into
"go ahead" (see :mod:`functionlayer._native` for the whole flow).

:func:`decision_of` reads a stored request into a :class:`NativeDecision`; :func:`claim` claims
the one execution an approval authorises (not granted: "already ran"; cannot be recorded:
"claim failed", fail closed); :func:`report` records how that execution ended; :func:`go_ahead`
claims every approval of a turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from functionlayer import _feedback
from functionlayer._channel_models import RequestContext
from functionlayer._execution import summarize
from functionlayer._ids import new_id
from functionlayer._log import log_report_failure
from functionlayer._models import ExecutionReport, FunctionCall, FunctionCallSpec

if TYPE_CHECKING:
    from functionlayer._client import FunctionLayer

__all__ = [
    "Claim",
    "NativeDecision",
    "PendingToolCall",
    "aclaim",
    "ago_ahead",
    "areport",
    "claim",
    "decision_of",
    "edits_unsupported_message",
    "go_ahead",
    "report",
    "request_for",
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
    claim_id = new_id()
    try:
        got = fl.backend.claim_execution(call_id, claim_id, claimed_by=fl.run_id)
    except Exception as exc:
        return _claim_failed(call_id, fn, exc)
    return _claimed(call_id, fn, claim_id, got.granted, got.execution)


async def aclaim(fl: FunctionLayer, call_id: str, fn: str) -> Claim:
    """The async :func:`claim`."""
    claim_id = new_id()
    try:
        got = await fl.backend.aclaim_execution(call_id, claim_id, claimed_by=fl.run_id)
    except Exception as exc:
        return _claim_failed(call_id, fn, exc)
    return _claimed(call_id, fn, claim_id, got.granted, got.execution)


def _execution_report(
    fl: FunctionLayer, granted: Claim, value: Any, raised: bool, redact: Any
) -> Any:
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
    outcome = _execution_report(fl, granted, value, raised, redact)
    try:
        fl.backend.report_execution(granted.call_id, outcome)
    except Exception as exc:
        log_report_failure(granted.fn, granted.call_id, exc)


async def areport(
    fl: FunctionLayer,
    granted: Claim,
    value: Any,
    *,
    raised: bool = False,
    redact: Callable[[Any], str] | None = None,
) -> None:
    """The async :func:`report`."""
    outcome = _execution_report(fl, granted, value, raised, redact)
    try:
        await fl.backend.areport_execution(granted.call_id, outcome)
    except Exception as exc:
        log_report_failure(granted.fn, granted.call_id, exc)


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
