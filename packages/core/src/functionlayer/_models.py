"""Wire models of the FunctionLayer open protocol.

Field names and shapes stay JSON-compatible with the predecessor SDK (``functionlayer-ai`` /
``humanlayer``) so its clients keep working against our server. Fields FunctionLayer adds are
all optional with ``None``/empty defaults, so old payloads still validate. Where a request
goes (contact channels, options, context, policy) is in ``_channel_models``; the shared base
(``defer_build``, unknown fields ignored) in ``_wire``. The public names are
:mod:`functionlayer.models`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from functionlayer._channel_models import (
    ApprovalPolicy,
    ContactChannel,
    RequestContext,
    ResponseOption,
)
from functionlayer._errors import ApprovalPendingError
from functionlayer._wire import WireModel

__all__ = [  # re-exported by functionlayer.models, and from there by functionlayer
    "DECISION_KINDS",
    "MAX_GROUP_ID_LENGTH",
    "ClaimedCall",
    "CompletedFunctionCall",
    "CompletedHumanContact",
    "DecisionKind",
    "Execution",
    "ExecutionClaim",
    "ExecutionReport",
    "FunctionCall",
    "FunctionCallSpec",
    "FunctionCallStatus",
    "HumanContact",
    "HumanContactSpec",
    "HumanContactStatus",
]

DecisionKind = Literal["approve", "reject", "edit", "respond"]
"""What a person may do with a function call: approve it, reject it (with feedback), approve
it with edited arguments, or respond in place of running it."""
DECISION_KINDS: tuple[DecisionKind, ...] = ("approve", "reject", "edit", "respond")
MAX_GROUP_ID_LENGTH = 128


class FunctionCallSpec(WireModel):  # type: ignore[no-redef]  # pydantic.mypy: field "kwargs" vs __init__(**kwargs)
    """What the agent wants to run, and how to ask."""

    fn: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    channel: ContactChannel | None = None
    reject_options: list[ResponseOption] | None = None
    state: dict[str, Any] | None = None
    """Opaque to the server; returned untouched."""
    # FunctionLayer additions.
    timeout_seconds: float | None = Field(default=None, gt=0)
    """The request expires this long after it is created; expiry rejects it for good."""
    policy: ApprovalPolicy | None = None
    description: str | None = None
    """The function's docstring, shown to the approver."""
    parameters: dict[str, Any] | None = None
    """JSON schema of the arguments object (properties in signature order, types,
    descriptions): the server validates edited arguments against it and channels build their
    edit forms and show arguments in this order."""
    allowed_decisions: list[DecisionKind] | None = None
    """The decisions a person may make (``approve``, ``reject``, ``edit``, ``respond``);
    ``None``: all of them."""
    irreversible: bool | None = None
    """The function cannot be undone: approving it takes a deliberate second step in every
    channel, enforced by the server. The operator's policy may mark a function irreversible
    too; the agent cannot unmark it (either one suffices)."""
    context: RequestContext | None = None
    """Why the agent asks (the user's request, the model's reason): untrusted text from the
    agent, shown to the approver as such."""
    group_id: str | None = Field(default=None, min_length=1, max_length=MAX_GROUP_ID_LENGTH)
    """Calls the model asked for in one turn share a group id, so a person can review them
    on one page. Inert: the server keys a group by the creating token and this id, and each
    call keeps its own decision."""


class Execution(WireModel):
    """The one execution an approval authorises (FunctionLayer addition).

    Recorded when the agent claims the approved call, just before the body runs; the outcome
    (``returned`` or ``raised``, with a short summary) is added when the body finishes. No
    outcome means the body started and its end was never reported (say the agent crashed):
    it is never run again automatically.
    """

    claim_id: str
    """Chosen by the claimant; a retried claim with the same id is the same claim."""
    claimed_by: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: Literal["returned", "raised"] | None = None
    summary: str | None = None
    """The returned value's repr, or the exception's type and message (at most 500
    characters, after the user's redaction hook)."""

    @property
    def finished(self) -> bool:
        return self.outcome is not None


class ExecutionClaim(WireModel):
    """The answer to a claim: ``granted`` only for the first claimant (and its retries)."""

    granted: bool
    execution: Execution


class ExecutionReport(WireModel):
    """How the claimed execution ended, sent once the body returns or raises."""

    claim_id: str
    outcome: Literal["returned", "raised"]
    summary: str = ""


class FunctionCallStatus(WireModel):
    requested_at: datetime | None = None
    responded_at: datetime | None = None
    approved: bool | None = None
    """``True`` approved, ``False`` rejected (or answered instead, or expired), ``None`` pending."""
    comment: str | None = None
    reject_option_name: str | None = None
    # FunctionLayer additions.
    edited_kwargs: dict[str, Any] | None = None
    """Set when the human approved with edited arguments: run with exactly these."""
    response: str | None = None
    """Set when the human answered instead of running the function (``approved`` is False)."""
    expires_at: datetime | None = None
    expired: bool = False
    """True when nobody answered before ``expires_at``: a fail-closed rejection."""
    responded_by: str | None = None
    responded_via: str | None = None
    approvals: list[str] | None = None
    """Quorum progress: who approved so far."""
    execution: Execution | None = None
    """Set once the approved call was claimed for execution (and its outcome, once known)."""
    confirmed_irreversible: bool | None = None
    """Sent by an approver with an approval of an irreversible function: the deliberate second
    step. Without it the server refuses to approve such a function."""
    abandoned_at: datetime | None = None
    """Set when the agent stopped waiting (e.g. Ctrl-C) before anyone decided: the call is
    then expired for good (``approved`` False) and can no longer be approved or run."""

    @property
    def completed(self) -> bool:
        return self.approved is not None


class CompletedFunctionCall(WireModel):  # type: ignore[no-redef]  # pydantic.mypy: field "kwargs" vs __init__(**kwargs)
    """A decided call, as returned by :meth:`FunctionCall.as_completed`."""

    call_id: str
    fn: str
    kwargs: dict[str, Any]
    approved: bool
    comment: str | None = None
    reject_option_name: str | None = None
    edited_kwargs: dict[str, Any] | None = None
    response: str | None = None
    expired: bool = False
    responded_by: str | None = None
    responded_via: str | None = None

    @property
    def approved_kwargs(self) -> dict[str, Any]:
        """The arguments the human approved: the edits if any, else the proposal."""
        return self.edited_kwargs if self.edited_kwargs is not None else self.kwargs


class FunctionCall(WireModel):
    run_id: str
    call_id: str
    spec: FunctionCallSpec
    status: FunctionCallStatus | None = None

    @property
    def completed(self) -> bool:
        return self.status is not None and self.status.approved is not None

    def as_completed(self) -> CompletedFunctionCall:
        """The decision; raises :class:`~functionlayer.ApprovalPendingError` while pending."""
        status = self.status
        if status is None or status.approved is None:
            raise ApprovalPendingError(f"function call {self.call_id!r} has no decision yet")
        return CompletedFunctionCall(
            call_id=self.call_id,
            fn=self.spec.fn,
            kwargs=self.spec.kwargs,
            approved=status.approved,
            comment=status.comment,
            reject_option_name=status.reject_option_name,
            edited_kwargs=status.edited_kwargs,
            response=status.response,
            expired=status.expired,
            responded_by=status.responded_by,
            responded_via=status.responded_via,
        )


class HumanContactSpec(WireModel):
    """A question for a human."""

    msg: str
    subject: str | None = None
    channel: ContactChannel | None = None
    response_options: list[ResponseOption] | None = None
    state: dict[str, Any] | None = None
    # FunctionLayer additions.
    timeout_seconds: float | None = Field(default=None, gt=0)
    policy: ApprovalPolicy | None = None
    context: RequestContext | None = None
    """Why the agent asks (the user's request, the model's reason): untrusted text from the
    agent, shown to the person as such, as for function calls."""


class HumanContactStatus(WireModel):
    requested_at: datetime | None = None
    responded_at: datetime | None = None
    response: str | None = None
    response_option_name: str | None = None
    # FunctionLayer additions.
    expires_at: datetime | None = None
    expired: bool = False
    responded_by: str | None = None
    responded_via: str | None = None
    abandoned_at: datetime | None = None
    """Set when the agent stopped waiting before anyone answered (expired for good)."""

    @property
    def completed(self) -> bool:
        return self.response is not None or self.expired


class CompletedHumanContact(WireModel):
    call_id: str
    msg: str
    response: str | None
    response_option_name: str | None = None
    expired: bool = False
    responded_by: str | None = None


class HumanContact(WireModel):
    run_id: str
    call_id: str
    spec: HumanContactSpec
    status: HumanContactStatus | None = None

    @property
    def completed(self) -> bool:
        return self.status is not None and self.status.completed

    def as_completed(self) -> CompletedHumanContact:
        status = self.status
        if status is None or not status.completed:
            raise ApprovalPendingError(f"human contact {self.call_id!r} has no answer yet")
        return CompletedHumanContact(
            call_id=self.call_id,
            msg=self.spec.msg,
            response=status.response,
            response_option_name=status.response_option_name,
            expired=status.expired,
            responded_by=status.responded_by,
        )


class ClaimedCall(WireModel):
    """The answer to waiting for a decision and claiming the execution in one round trip
    (FunctionLayer addition): the call as it is now, and the claim the server made on the
    caller's behalf when the call was approved as proposed. ``claim`` is ``None`` while the
    call is pending, when it was not approved, and when the approval edited the arguments
    (the agent checks the edits first, then claims on its own)."""

    call: FunctionCall
    claim: ExecutionClaim | None = None
