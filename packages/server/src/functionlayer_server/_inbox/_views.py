"""Plain view data for the inbox templates, built from the wire models.

Templates only format what is computed here; every string from a request (written by the LLM)
stays a plain ``str`` and is escaped by Jinja2's autoescape when rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from functionlayer.display import (
    CONTEXT_LABEL,
    WARNING,
    ComparedArgument,
    ContextLine,
    DisplayArgument,
    compare_arguments,
    context_lines,
    display_arguments,
    format_number,
    make_visible,
    ordered_names,
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

__all__ = [
    "ArgumentsView",
    "AuditRow",
    "ContextView",
    "EditField",
    "Outcome",
    "RequestRow",
    "arguments_view",
    "audit_row",
    "call_outcome",
    "channel_context",
    "contact_outcome",
    "context_view",
    "edit_fields",
    "edits_from_form",
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
    status = call.status
    if status is None or status.approved is None:
        approvals = list(status.approvals or []) if status else []
        return Outcome(pending=True, label="pending", tone="pending", approvals=approvals)
    common: dict[str, Any] = {
        "pending": False,
        "who": status.responded_by,
        "via": status.responded_via,
        "when": format_time(status.responded_at),
        "comment": status.comment,
        "option": status.reject_option_name,
        "approvals": list(status.approvals or []),
        "execution": execution_line(call),
    }
    if status.approved:
        if status.edited_kwargs is not None:
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
        return Outcome(label="approved", tone="ok", summary="Approved", **common)
    if status.abandoned_at is not None:
        return Outcome(label="abandoned", tone="bad", summary=_abandoned(status), **common)
    if status.expired:
        return Outcome(
            label="expired", tone="bad", summary="Expired without an answer (rejected)", **common
        )
    if status.response is not None:
        return Outcome(
            label="answered instead",
            tone="info",
            summary="Answered instead of running the function",
            response=status.response,
            **common,
        )
    return Outcome(label="rejected", tone="bad", summary="Rejected", **common)


def _abandoned(status: FunctionCallStatus | HumanContactStatus) -> str:
    return (
        f"The agent stopped waiting at {format_time(status.abandoned_at)}: nothing can be "
        "approved or run"
    )


def contact_outcome(contact: HumanContact) -> Outcome:
    status = contact.status
    if status is None or not status.completed:
        return Outcome(pending=True, label="pending", tone="pending")
    common: dict[str, Any] = {
        "pending": False,
        "who": status.responded_by,
        "via": status.responded_via,
        "when": format_time(status.responded_at),
        "option": status.response_option_name,
    }
    if status.abandoned_at is not None:
        return Outcome(label="abandoned", tone="bad", summary=_abandoned(status), **common)
    if status.response is None and status.expired:
        return Outcome(label="expired", tone="bad", summary="Expired without an answer", **common)
    return Outcome(
        label="answered", tone="ok", summary="Answered", response=status.response, **common
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


def row_for_call(call: FunctionCall, now: datetime) -> RequestRow:
    status = call.status
    return RequestRow(
        kind="call",
        call_id=call.call_id,
        run_id=call.run_id,
        title=call.spec.fn,
        summary=short_args(call.spec.kwargs),
        url=call_url(call.call_id),
        requested_at=status.requested_at if status else None,
        waiting=since(status.requested_at if status else None, now),
        expires_in=_expires_in(status.expires_at if status else None, now),
        outcome=call_outcome(call),
        decided_at=status.responded_at if status else None,
    )


def row_for_contact(contact: HumanContact, now: datetime) -> RequestRow:
    status = contact.status
    spec = contact.spec
    return RequestRow(
        kind="contact",
        call_id=contact.call_id,
        run_id=contact.run_id,
        title=spec.subject or "Question from the agent",
        summary=_shorten(spec.msg),
        url=contact_url(contact.call_id),
        requested_at=status.requested_at if status else None,
        waiting=since(status.requested_at if status else None, now),
        expires_in=_expires_in(status.expires_at if status else None, now),
        outcome=contact_outcome(contact),
        decided_at=status.responded_at if status else None,
    )


def _channel_lines(channel: ContactChannel, prefix: str = "") -> Iterable[tuple[str, str]]:
    if channel.slack is not None:
        slack = channel.slack
        yield f"{prefix}Slack", slack.channel_or_user_id
        if slack.context_about_channel_or_user:
            yield f"{prefix}Slack context", slack.context_about_channel_or_user
        if slack.allowed_responder_ids:
            yield f"{prefix}Slack responders", ", ".join(slack.allowed_responder_ids)
    if channel.email is not None:
        email = channel.email
        yield f"{prefix}Email", email.address
        if email.context_about_user:
            yield f"{prefix}Email context", email.context_about_user
        if email.subject:
            yield f"{prefix}Email subject", email.subject
        for recipient in email.additional_recipients or []:
            yield f"{prefix}Email {recipient.field}", recipient.address
    if channel.sms is not None:
        yield f"{prefix}SMS", channel.sms.phone_number
    if channel.whatsapp is not None:
        yield f"{prefix}WhatsApp", channel.whatsapp.phone_number
    if channel.users:
        yield f"{prefix}Inbox users", ", ".join(channel.users)


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


# -- the audit trail: labelled fields, no raw JSON ---------------------------------------------


@dataclass
class AuditRow:
    when: str
    who: str
    via: str
    action: str
    details: list[tuple[str, str]]


_ACTION_WORDS = {
    "created": "requested",
    "approval_recorded": "approval recorded",
    "responded": "answered instead",
    "execution_claimed": "execution started",
    "execution_reported": "execution finished",
}


def _label(key: str) -> str:
    return make_visible(key.replace("_", " "))[0].capitalize()


def _detail_text(value: Any) -> str:
    if isinstance(value, str):
        return make_visible(value)[0]
    if isinstance(value, bool) or value is None:
        return "yes" if value else "no" if value is False else "—"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(_detail_text(v) for v in value) or "—"
    if isinstance(value, Mapping):
        return "; ".join(f"{_label(str(k))}: {_detail_text(v)}" for k, v in value.items())
    return make_visible(_compact(value))[0]


def audit_row(when: str, who: str, via: str, action: str, details: Any) -> AuditRow:
    """One audit entry for people: the action in words, each detail a labelled field (empty
    ones left out), values as text (never a JSON dump), hidden characters marked."""
    fields: list[tuple[str, str]] = []
    if isinstance(details, Mapping):
        for key, value in details.items():
            if value is None or value == "" or value == [] or value == {}:
                continue
            fields.append((_label(str(key)), _detail_text(value)))
    elif details:
        fields.append(("Details", _detail_text(details)))
    return AuditRow(
        when=when,
        who=make_visible(who)[0],
        via=make_visible(via)[0],
        action=_ACTION_WORDS.get(action, action.replace("_", " ")),
        details=fields,
    )


# -- arguments: faithful display and the schema-generated edit form ---------------------------


@dataclass
class ArgumentsView:
    """The arguments as shown (signature order, hidden characters marked), and the function's
    description (the agent's text too) with its hidden characters marked."""

    items: list[DisplayArgument]
    marked: bool
    warning: str = WARNING
    description: str = ""


def arguments_view(
    kwargs: dict[str, Any], schema: dict[str, Any] | None, description: str | None = None
) -> ArgumentsView:
    items = display_arguments(kwargs, schema)
    shown, marked = make_visible(description or "")
    return ArgumentsView(
        items=items, marked=marked or any(a.marked for a in items), description=shown
    )


@dataclass
class EditField:
    """One typed input of the edit form, built from the parameter's JSON schema."""

    name: str
    input: str  # integer, number, boolean, enum, text, textarea, json
    value: str = ""
    checked: bool = False
    options: list[tuple[str, str, bool]] = field(default_factory=list)
    required: bool = False
    nullable: bool = False
    description: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        """The name as shown (hidden characters marked); ``name`` is what the form sends."""
        return make_visible(self.name)[0]

    @property
    def has_choice(self) -> bool:
        """For an enum: whether one of its values is selected (else "(none)" is)."""
        return any(selected for _, _, selected in self.options)

    @property
    def form_name(self) -> str:
        return FIELD_PREFIX + self.name

    @property
    def dom_id(self) -> str:
        return "arg-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)


FIELD_PREFIX = "arg."


def _resolve(prop: Any, root: Mapping[str, Any] | None, depth: int = 0) -> Any:
    """Follow a local ``{"$ref": "#/$defs/Name"}`` (as pydantic writes enums and models)."""
    ref = prop.get("$ref") if isinstance(prop, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#/") or root is None or depth > 8:
        return prop
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    if not isinstance(target, dict):
        return prop
    merged = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return _resolve(merged, root, depth + 1)


def _base(prop: Any, root: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
    """The non-null alternative of a property's schema, and whether null is allowed."""
    prop = _resolve(prop, root)
    if not isinstance(prop, dict):
        return {}, False
    for key in ("anyOf", "oneOf"):
        branches = prop.get(key)
        if isinstance(branches, list):
            branches = [_resolve(b, root) for b in branches]
            real = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
            nullable = len(real) < len(branches)
            if len(real) == 1:
                merged = {k: v for k, v in prop.items() if k != key}
                return {**real[0], **merged}, nullable
            return {k: v for k, v in prop.items() if k != key}, nullable
    kind = prop.get("type")
    if isinstance(kind, list):
        others = [t for t in kind if t != "null"]
        return {**prop, "type": others[0] if len(others) == 1 else others}, "null" in kind
    return prop, False


def _input_for(prop: dict[str, Any], value: Any) -> str:
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return "enum"
    kind = prop.get("type")
    if kind == "boolean":
        return "boolean"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "string":
        if isinstance(value, str) and make_visible(value)[1]:
            # Edited as a JSON string, where hidden characters are visible \\u escapes: a text
            # input would hold them invisibly.
            return "json"
        return "textarea" if isinstance(value, str) and "\n" in value else "text"
    return "json"


def _as_text(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind in ("text", "textarea") and isinstance(value, str):
        return value
    if kind in ("integer", "number") and isinstance(value, int | float):
        return json.dumps(value)
    return pretty_json(value)


def edit_fields(
    kwargs: dict[str, Any],
    schema: dict[str, Any] | None,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[EditField]:
    """The typed inputs for editing; empty when the request has no schema (raw JSON then).
    ``form`` (what the person submitted) takes precedence over the proposed values."""
    if not schema or not isinstance(schema.get("properties"), dict):
        return []
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required") or [])
    errors = errors or {}
    fields: list[EditField] = []
    for name in ordered_names({**dict.fromkeys(properties), **kwargs}, schema):
        prop, nullable = _base(properties.get(name, {}), schema)
        value = kwargs.get(name, prop.get("default"))
        kind = _input_for(prop, value)
        submitted = None if form is None else form.get(FIELD_PREFIX + name)
        item = EditField(
            name=name,
            input=kind,
            required=name in required,
            nullable=nullable,
            description=make_visible(str(prop.get("description") or ""))[0],
            error=errors.get(name, ""),
        )
        if kind == "boolean":
            item.checked = (submitted is not None) if form is not None else value is True
        elif kind == "enum":
            chosen = submitted if submitted is not None else None
            for index, option in enumerate(prop["enum"]):
                selected = str(index) == chosen if chosen is not None else option == value
                label = make_visible(option if isinstance(option, str) else json.dumps(option))[0]
                item.options.append((str(index), label, selected))
        else:
            item.value = submitted if submitted is not None else _as_text(kind, value)
            if kind == "text" and "\n" in item.value:
                item.input = "textarea"
        fields.append(item)
    return fields


def _initial_choice(item: EditField) -> str:
    """The value an untouched ``<select>`` submits for an enum field."""
    return next((value for value, _, selected in item.options if selected), "")


def edits_from_form(
    kwargs: dict[str, Any], schema: dict[str, Any] | None, form: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The edited arguments the typed form asks for, and problems by argument name.

    Only the fields the person changed count as edits: each submitted field is compared with
    what the form showed before any change (rebuilt here from the proposal, not taken from
    the form), so an argument proposed as ``null`` stays ``null`` and a schema property the
    agent never proposed is not added from its ``default``. A field missing from the form is
    unchanged (except a checkbox, which browsers omit when it is unticked)."""
    edits: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for item in edit_fields(kwargs, schema):
        raw = form.get(item.form_name)
        if item.input == "boolean":
            if (raw is not None) != item.checked:
                edits[item.name] = raw is not None
            continue
        if not isinstance(raw, str):
            continue
        text = raw.replace("\r\n", "\n")
        if item.input == "enum":
            if text == _initial_choice(item):
                continue
        elif text in (item.value, "\n" + item.value) or (
            item.input != "textarea" and text.strip() == item.value.strip()
        ):
            # Unchanged (a naive client may keep the line break written after <textarea>).
            continue
        if item.input in ("text", "textarea"):
            edits[item.name] = text
            continue
        if not text.strip():
            if item.nullable:
                edits[item.name] = None
            elif item.name in kwargs:
                problems[item.name] = "is required"
            continue
        if item.input == "enum":
            prop, _ = _base((schema or {}).get("properties", {}).get(item.name, {}), schema)
            options = prop.get("enum") or []
            try:
                edits[item.name] = options[int(text)]
            except (ValueError, IndexError):
                problems[item.name] = "pick one of the listed values"
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            what = "a number" if item.input in ("integer", "number") else "valid JSON"
            problems[item.name] = f"must be {what} ({exc.msg})"
            continue
        edits[item.name] = value
    return edits, problems
