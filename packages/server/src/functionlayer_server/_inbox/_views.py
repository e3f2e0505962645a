"""Plain view data for the inbox templates, built from the wire models.

Templates only format what is computed here; every string from a request (written by the LLM)
stays a plain ``str`` and is escaped by Jinja2's autoescape when rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from functionlayer.display import (
    CONTEXT_LABEL,
    WARNING,
    ComparedArgument,
    ContextLine,
    compare_arguments,
    context_lines,
    format_number,
    make_visible,
    visible_json,
)
from functionlayer.models import (
    ApprovalPolicy,
    ContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
    ResponseOption,
)

from functionlayer_server._outcome import outcome

__all__ = [
    "ContextView",
    "Outcome",
    "RequestRow",
    "call_outcome",
    "channel_context",
    "contact_outcome",
    "context_view",
    "execution_line",
    "format_duration",
    "format_time",
    "pretty_json",
    "row_for_call",
    "row_for_contact",
    "short_args",
    "watch_state",
]

SHORT_ARGS_LIMIT = 120


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 10m``, ``4d 3h``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    return format_duration((now - _aware(moment)).total_seconds())


def pretty_json(value: Any) -> str:
    """Indented JSON in the proposal's order; hidden and look-alike characters are written as
    ``\\uXXXX`` escapes (visible, and the text parses back to exactly ``value``)."""
    return visible_json(value)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _short(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    return _compact(value)


def short_args(kwargs: dict[str, Any], limit: int = SHORT_ARGS_LIMIT) -> str:
    text = ", ".join(f"{name}={_short(value)}" for name, value in kwargs.items())
    text = make_visible(text)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shorten(text: str, limit: int = SHORT_ARGS_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class Outcome:
    """How a request ended (or that it is still open), for the status box."""

    pending: bool
    label: str  # short badge text: "pending", "approved", "rejected", ...
    tone: str  # css class: pending / ok / bad / info
    summary: str = ""
    who: str | None = None
    via: str | None = None
    when: str = ""
    comment: str | None = None
    option: str | None = None
    response: str | None = None
    edited_json: str | None = None
    approvals: list[str] = field(default_factory=list)
    execution: str | None = None
    """For an approved call that was claimed: when it ran and what came of it."""
    comparison: list[ComparedArgument] = field(default_factory=list)
    """After an approval with edits: every argument as proposed and as approved (run)."""


def execution_line(call: FunctionCall) -> str | None:
    """ "Ran at … : returned …", "Ran at … : raised …" or "Started at …, outcome unknown"."""
    execution = call.status.execution if call.status is not None else None
    if execution is None:
        return None
    if execution.outcome is None:
        return f"Started at {format_time(execution.started_at)}, outcome unknown"
    verb = "returned" if execution.outcome == "returned" else "raised"
    at = format_time(execution.finished_at or execution.started_at)
    return f"Ran at {at} : {verb} {execution.summary or ''}".rstrip()


def call_outcome(call: FunctionCall) -> Outcome:
    status, fact = call.status, outcome(call)
    if status is None or fact.status == "pending":
        return Outcome(
            pending=True, label="pending", tone="pending", approvals=list(fact.approvals)
        )
    common: dict[str, Any] = {
        "pending": False,
        "who": fact.who,
        "via": fact.via,
        "when": format_time(status.responded_at),
        "comment": fact.comment,
        "option": fact.option,
        "approvals": list(fact.approvals),
        "execution": execution_line(call),
        "response": fact.response,
    }
    if fact.edited and status.edited_kwargs is not None:
        return Outcome(
            label="approved with edits",
            tone="ok",
            summary="Approved with edited arguments",
            edited_json=pretty_json(status.edited_kwargs),
            comparison=compare_arguments(
                call.spec.kwargs, status.edited_kwargs, call.spec.parameters
            ),
            **common,
        )
    label, tone, summary = _CALL_BOX[fact.status]
    return Outcome(label=label, tone=tone, summary=summary or _abandoned(status), **common)


_CALL_BOX = {  # outcome status -> badge, tone, summary (abandoned: said with its time)
    "approved": ("approved", "ok", "Approved"),
    "abandoned": ("abandoned", "bad", ""),
    "expired": ("expired", "bad", "Expired without an answer (rejected)"),
    "answered_instead": ("answered instead", "info", "Answered instead of running the function"),
    "rejected": ("rejected", "bad", "Rejected"),
}


def _abandoned(status: FunctionCallStatus | HumanContactStatus) -> str:
    return (
        f"The agent stopped waiting at {format_time(status.abandoned_at)}: nothing can be "
        "approved or run"
    )


def contact_outcome(contact: HumanContact) -> Outcome:
    status, fact = contact.status, outcome(contact)
    if status is None or fact.status == "pending":
        return Outcome(pending=True, label="pending", tone="pending")
    common: dict[str, Any] = {
        "pending": False,
        "who": fact.who,
        "via": fact.via,
        "when": format_time(status.responded_at),
        "option": status.response_option_name,
    }
    if fact.status == "abandoned":
        return Outcome(label="abandoned", tone="bad", summary=_abandoned(status), **common)
    if fact.status == "expired":
        return Outcome(label="expired", tone="bad", summary="Expired without an answer", **common)
    return Outcome(
        label="answered", tone="ok", summary="Answered", response=fact.response, **common
    )


@dataclass
class RequestRow:
    kind: str  # "call" or "contact"
    call_id: str
    run_id: str
    title: str
    summary: str
    url: str
    requested_at: datetime | None
    waiting: str
    expires_in: str
    outcome: Outcome
    decided_at: datetime | None
    requested_by: str = ""
    """``agent token name · project`` (filled in by the router, which reads the record)."""


def watch_state(outcome: Outcome) -> str:
    """What the detail page's live update compares: the outcome, quorum progress and the
    execution (started, finished)."""
    return f"{outcome.label}|{len(outcome.approvals)}|{outcome.execution or ''}"


def requester_label(origin: tuple[str, str] | None) -> str:
    """``agent:NAME · project P`` (hidden characters marked), or empty when unknown."""
    if origin is None:
        return ""
    name, project = origin
    who = f"agent:{make_visible(name)[0]}" if name else "(no agent token)"
    return f"{who} · project {make_visible(project)[0]}"


def call_url(call_id: str) -> str:
    return "/inbox/calls/" + quote(call_id, safe="")


def contact_url(call_id: str) -> str:
    return "/inbox/contacts/" + quote(call_id, safe="")


def _expires_in(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return ""
    left = (_aware(expires_at) - now).total_seconds()
    return format_duration(left) if left > 0 else "now"


def _row(
    request: FunctionCall | HumanContact, now: datetime, kind: str, title: str, summary: str
) -> RequestRow:
    """A request's row: what it asks (``title``, ``summary``), its times and its outcome."""
    status = request.status
    requested_at = status.requested_at if status else None
    if isinstance(request, FunctionCall):
        url, outcome = call_url(request.call_id), call_outcome(request)
    else:
        url, outcome = contact_url(request.call_id), contact_outcome(request)
    return RequestRow(
        kind=kind,
        call_id=request.call_id,
        run_id=request.run_id,
        title=title,
        summary=summary,
        url=url,
        requested_at=requested_at,
        waiting=since(requested_at, now),
        expires_in=_expires_in(status.expires_at if status else None, now),
        outcome=outcome,
        decided_at=status.responded_at if status else None,
    )


def row_for_call(call: FunctionCall, now: datetime) -> RequestRow:
    return _row(call, now, "call", call.spec.fn, short_args(call.spec.kwargs))


def row_for_contact(contact: HumanContact, now: datetime) -> RequestRow:
    title = contact.spec.subject or "Question from the agent"
    return _row(contact, now, "contact", title, _shorten(contact.spec.msg))


def _channel_lines(channel: ContactChannel, prefix: str = "") -> Iterable[tuple[str, str]]:
    """Label/value pairs of one contact channel (a value left empty is not shown, but for
    each target's own address)."""
    pairs: list[tuple[str, str | None]] = []
    if (slack := channel.slack) is not None:
        pairs += [
            ("Slack", slack.channel_or_user_id),
            ("Slack context", slack.context_about_channel_or_user or None),
            ("Slack responders", ", ".join(ids) if (ids := slack.allowed_responder_ids) else None),
        ]
    if (email := channel.email) is not None:
        pairs += [
            ("Email", email.address),
            ("Email context", email.context_about_user or None),
            ("Email subject", email.subject or None),
        ]
        pairs += [(f"Email {r.field}", r.address) for r in email.additional_recipients or []]
    if channel.sms is not None:
        pairs.append(("SMS", channel.sms.phone_number))
    if channel.whatsapp is not None:
        pairs.append(("WhatsApp", channel.whatsapp.phone_number))
    if channel.users:
        pairs.append(("Inbox users", ", ".join(channel.users)))
    for label, value in pairs:
        if value is not None:
            yield prefix + label, value


def channel_context(
    channel: ContactChannel | None, policy: ApprovalPolicy | None
) -> list[tuple[str, str]]:
    """Label/value pairs describing where a request was routed."""
    lines: list[tuple[str, str]] = []
    if channel is not None:
        lines.extend(_channel_lines(channel))
    if policy is not None:
        if policy.responders:
            lines.append(("Responders", ", ".join(policy.responders)))
        if policy.approvals_required > 1:
            lines.append(("Approvals required", str(policy.approvals_required)))
        if policy.channels:
            lines.append(("Policy mode", policy.mode))
            for index, policy_channel in enumerate(policy.channels, start=1):
                lines.extend(_channel_lines(policy_channel, prefix=f"#{index} "))
    if not lines:
        lines.append(("Routing", "not routed: every inbox user may answer"))
    return lines


def option_label(option: ResponseOption) -> str:
    return option.title or option.name


# -- the agent's context: quoted, labelled, never trusted -------------------------------------


@dataclass
class ContextView:
    """The agent's context for the page: ``lines`` empty when there is none."""

    lines: list[ContextLine]
    label: str = CONTEXT_LABEL
    warning: str = WARNING

    @property
    def marked(self) -> bool:
        return any(line.marked for line in self.lines)


def context_view(context: Any) -> ContextView:
    return ContextView(context_lines(context))
