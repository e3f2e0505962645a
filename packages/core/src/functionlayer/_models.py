"""Wire models of the FunctionLayer open protocol.

Field names and shapes stay JSON-compatible with the predecessor SDK (``functionlayer-ai`` /
``humanlayer``) so its clients keep working against our server. Fields FunctionLayer adds are
all optional with ``None``/empty defaults, so old payloads still validate.

Models use ``defer_build`` so importing :mod:`functionlayer` does not pay for building every
validator up front (see ``bench/core_overhead.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApprovalPolicy",
    "ClaimedCall",
    "CompletedFunctionCall",
    "CompletedHumanContact",
    "ContactChannel",
    "DecisionKind",
    "DiscordContactChannel",
    "EmailContactChannel",
    "EmailRecipient",
    "Execution",
    "ExecutionClaim",
    "ExecutionReport",
    "FunctionCall",
    "FunctionCallSpec",
    "FunctionCallStatus",
    "HumanContact",
    "HumanContactSpec",
    "HumanContactStatus",
    "RequestContext",
    "ResponseOption",
    "SMSContactChannel",
    "SlackContactChannel",
    "TeamsContactChannel",
    "WhatsAppContactChannel",
]

_CONFIG = ConfigDict(defer_build=True, extra="ignore")

DecisionKind = Literal["approve", "reject", "edit", "respond"]
"""What a person may do with a function call: approve it, reject it (with feedback), approve
it with edited arguments, or respond in place of running it."""
DECISION_KINDS: tuple[DecisionKind, ...] = ("approve", "reject", "edit", "respond")
MAX_GROUP_ID_LENGTH = 128


class _Model(BaseModel):
    model_config = _CONFIG


class SlackContactChannel(_Model):
    """Route a request to a Slack channel or user."""

    channel_or_user_id: str
    context_about_channel_or_user: str | None = None
    bot_token: str | None = None
    """Overrides the server's bot token for this channel."""
    allowed_responder_ids: list[str] | None = None
    """Slack user ids allowed to answer; anyone in the channel when unset."""
    thread_ts: str | None = None


class DiscordContactChannel(_Model):
    """Route a request to Discord (a FunctionLayer addition): a channel of a server the bot is
    in (``channel_id``), or a direct message to a user (``user_id``). With both, the message
    goes to the channel and the user is who it is meant for."""

    channel_id: str | None = None
    user_id: str | None = None
    allowed_responder_ids: list[str] | None = None
    """Discord user ids allowed to answer; anyone the policy allows when unset."""
    context: str | None = None
    """Who or what this is (shown in the message and in tool descriptions)."""


class TeamsContactChannel(_Model):
    """Route a request to Microsoft Teams (a FunctionLayer addition): a conversation (a channel
    or a chat) the bot is in, posted through the Bot Framework connector the server's operator
    configured (the agent never names where the bot's token goes)."""

    conversation_id: str
    allowed_responder_ids: list[str] | None = None
    """Microsoft Entra (AAD) object ids allowed to answer; anyone the policy allows when unset."""
    context: str | None = None
    """Who or what this is (shown in the card and in tool descriptions)."""


class EmailContactChannel(_Model):
    """Route a request to an email address."""

    address: str
    context_about_user: str | None = None
    subject: str | None = None
    in_reply_to_message_id: str | None = None
    references_message_id: str | None = None
    additional_recipients: list[EmailRecipient] | None = None


class EmailRecipient(_Model):
    address: str
    context_about_user: str | None = None
    field: Literal["to", "cc", "bcc"] = "to"


class SMSContactChannel(_Model):
    phone_number: str
    context_about_user: str | None = None


class WhatsAppContactChannel(_Model):
    phone_number: str
    context_about_user: str | None = None


class ContactChannel(_Model):
    """Where a request goes. Exactly one kind is normally set (``slack=``, ``email=``, ...).

    ``users`` (a FunctionLayer addition) names web-inbox users who may answer: a request with
    a channel is shown in the inbox only to the users it is routed to.
    """

    slack: SlackContactChannel | None = None
    sms: SMSContactChannel | None = None
    whatsapp: WhatsAppContactChannel | None = None
    email: EmailContactChannel | None = None
    users: list[str] | None = None
    discord: DiscordContactChannel | None = None
    teams: TeamsContactChannel | None = None

    def describe(self) -> str:
        """A short human description, used for tool names and docstrings."""
        if self.slack is not None:
            who = self.slack.context_about_channel_or_user or self.slack.channel_or_user_id
            return f"Slack ({who})"
        if self.email is not None:
            who = self.email.context_about_user or self.email.address
            return f"email ({who})"
        if self.discord is not None:
            where = self.discord.context or self.discord.channel_id or self.discord.user_id
            return f"Discord ({where or 'a channel'})"
        if self.teams is not None:
            return f"Microsoft Teams ({self.teams.context or self.teams.conversation_id})"
        if self.sms is not None:
            return f"SMS ({self.sms.context_about_user or self.sms.phone_number})"
        if self.whatsapp is not None:
            return f"WhatsApp ({self.whatsapp.context_about_user or self.whatsapp.phone_number})"
        if self.users:
            return f"the web inbox ({', '.join(self.users)})"
        return "a human"


class ResponseOption(_Model):
    """A pre-written answer the human can pick (for example a reason to reject)."""

    name: str
    title: str | None = None
    description: str | None = None
    prompt_fill: str | None = None
    interactive: bool = False


CONTEXT_FIELD_LIMIT = 4000
"""At most this many characters per field of :class:`RequestContext`."""


class RequestContext(_Model):
    """What the agent says about why it asks (a FunctionLayer addition), for the approver.

    Never trusted: the agent (and a prompt-injected model) writes every word of it. Every
    channel shows it as quoted text labelled as coming from the agent, with hidden characters
    marked (``_display.format_context``); nothing in it changes routing, policy or the call.
    Each field is at most :data:`CONTEXT_FIELD_LIMIT` characters (:meth:`bounded` cuts
    longer text before sending)."""

    user_request: str | None = Field(default=None, max_length=CONTEXT_FIELD_LIMIT)
    """What the user asked the agent (the last user message)."""
    reason: str | None = Field(default=None, max_length=CONTEXT_FIELD_LIMIT)
    """The model's stated reason: its text before the tool call."""
    turn: str | None = Field(default=None, max_length=CONTEXT_FIELD_LIMIT)
    """Anything else of the conversation turn the agent chose to include."""

    @classmethod
    def bounded(
        cls,
        *,
        user_request: str | None = None,
        reason: str | None = None,
        turn: str | None = None,
    ) -> RequestContext | None:
        """A context with each field cut to the limit (``…`` marks a cut); None when empty."""

        def cut(text: str | None) -> str | None:
            if text is None or not text.strip():
                return None
            text = text.strip()
            if len(text) <= CONTEXT_FIELD_LIMIT:
                return text
            return text[: CONTEXT_FIELD_LIMIT - 1] + "…"

        fields = {"user_request": cut(user_request), "reason": cut(reason), "turn": cut(turn)}
        if not any(fields.values()):
            return None
        return cls(**fields)


class ApprovalPolicy(_Model):
    """How a server routes and decides a request (FunctionLayer addition).

    - ``channels`` with ``mode="any_of"``: send to all at once, the first answer wins.
    - ``mode="escalate"``: send to ``channels[0]``; every ``escalate_after_seconds`` without an
      answer, also send to the next channel.
    - ``approvals_required`` > 1: a quorum; that many distinct responders must approve, and any
      one rejection rejects with that responder's feedback.
    """

    channels: list[ContactChannel] = Field(default_factory=list)
    mode: Literal["any_of", "escalate"] = "any_of"
    escalate_after_seconds: float | None = None
    approvals_required: int = Field(default=1, ge=1)
    responders: list[str] | None = None
    """Who may answer (inbox user names, email addresses or Slack user ids)."""


class FunctionCallSpec(_Model):  # type: ignore[no-redef]  # pydantic.mypy: field "kwargs" vs __init__(**kwargs)
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


class Execution(_Model):
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


class ExecutionClaim(_Model):
    """The answer to a claim: ``granted`` only for the first claimant (and its retries)."""

    granted: bool
    execution: Execution


class ExecutionReport(_Model):
    """How the claimed execution ended, sent once the body returns or raises."""

    claim_id: str
    outcome: Literal["returned", "raised"]
    summary: str = ""


class FunctionCallStatus(_Model):
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


class CompletedFunctionCall(_Model):  # type: ignore[no-redef]  # pydantic.mypy: field "kwargs" vs __init__(**kwargs)
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


class FunctionCall(_Model):
    run_id: str
    call_id: str
    spec: FunctionCallSpec
    status: FunctionCallStatus | None = None

    @property
    def completed(self) -> bool:
        return self.status is not None and self.status.approved is not None

    def as_completed(self) -> CompletedFunctionCall:
        """The decision; raises :class:`~functionlayer.ApprovalPendingError` while pending."""
        from functionlayer._errors import ApprovalPendingError

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


class HumanContactSpec(_Model):
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


class HumanContactStatus(_Model):
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


class CompletedHumanContact(_Model):
    call_id: str
    msg: str
    response: str | None
    response_option_name: str | None = None
    expired: bool = False
    responded_by: str | None = None


class HumanContact(_Model):
    run_id: str
    call_id: str
    spec: HumanContactSpec
    status: HumanContactStatus | None = None

    @property
    def completed(self) -> bool:
        return self.status is not None and self.status.completed

    def as_completed(self) -> CompletedHumanContact:
        from functionlayer._errors import ApprovalPendingError

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


class ClaimedCall(_Model):
    """The answer to waiting for a decision and claiming the execution in one round trip
    (FunctionLayer addition): the call as it is now, and the claim the server made on the
    caller's behalf when the call was approved as proposed. ``claim`` is ``None`` while the
    call is pending, when it was not approved, and when the approval edited the arguments
    (the agent checks the edits first, then claims on its own)."""

    call: FunctionCall
    claim: ExecutionClaim | None = None
