"""Who decided what: one model of how a request ended, rendered by every channel from a table.

``outcome(request)`` is a pure function from a function call or human contact to a small
:class:`Outcome` (the status, who, through what, the grant or operator rule, the comment or
answer, edits, quorum, whether it ran). Each channel keeps only its markup: a table from status
to a line with ``{fields}`` and the escaping it needs, filled by :func:`render`. So Slack,
Discord, Teams and email state the same facts for the same outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from functionlayer.models import FunctionCall, HumanContact

__all__ = ["STATUSES", "Outcome", "OutcomeTable", "Status", "outcome", "render"]

Status = Literal[
    "pending", "approved", "rejected", "answered", "answered_instead", "expired", "abandoned"
]
STATUSES: tuple[Status, ...] = (
    "pending",
    "approved",
    "rejected",
    "answered",
    "answered_instead",
    "expired",
    "abandoned",
)
GRANT_PREFIX = "approved under grant "
RULE_PREFIX = "rule:"
CONTACT_EXPIRED = "nobody answered before the deadline"


@dataclass(frozen=True)
class Outcome:
    status: Status
    kind: Literal["call", "contact"]
    who: str | None = None
    """The person (or ``rule:<name>``, or the server for an expiry) recorded as responding."""
    via: str | None = None
    """``slack``, ``email``, ``web``, ``grant``, ``policy``, ``scheduler``, ..."""
    comment: str | None = None
    """The approver's comment, the rejection feedback or the expiry's reason."""
    option: str | None = None
    """The reject option (a call) or the response option (a contact) that was picked."""
    response: str | None = None
    """A contact's answer, or the answer given instead of running a call."""
    edited: bool = False
    approvals: tuple[str, ...] = ()
    """Quorum: everyone who approved, in order."""
    grant: str | None = None
    """The grant id the call was approved under (``via == "grant"``)."""
    rule: str | None = None
    """The operator rule's name that decided the call (``via == "policy"``)."""
    ran: str | None = None
    """For an approved call that was claimed: ``returned``, ``raised`` or ``started``."""


def outcome(request: FunctionCall | HumanContact) -> Outcome:
    """How ``request`` ended (or that it is pending), as plain facts."""
    if isinstance(request, HumanContact):
        contact = request.status
        if contact is None or not contact.completed:
            return Outcome("pending", "contact")
        answered = Outcome(
            "answered",
            "contact",
            who=contact.responded_by,
            via=contact.responded_via,
            response=contact.response or "",
            option=contact.response_option_name,
        )
        if contact.abandoned_at is not None:
            return replace(answered, status="abandoned", response=None, option=None)
        if contact.expired and contact.response is None:
            return replace(
                answered, status="expired", response=None, option=None, comment=CONTACT_EXPIRED
            )
        return answered
    status = request.status
    if status is None or status.approved is None:
        return Outcome("pending", "call", approvals=tuple(status.approvals or ()) if status else ())
    via = status.responded_via
    who = status.responded_by
    comment = status.comment
    grant = rule = None
    if via == "grant" and comment and comment.startswith(GRANT_PREFIX):
        grant = comment.removeprefix(GRANT_PREFIX).strip() or None
    if via == "policy" and who and who.startswith(RULE_PREFIX):
        rule = who.removeprefix(RULE_PREFIX)
    execution = status.execution
    ran = None
    if execution is not None:
        ran = execution.outcome or "started"
    facts = Outcome(
        "rejected",
        "call",
        who=who,
        via=via,
        comment=comment,
        approvals=tuple(status.approvals or ()),
        grant=grant,
        rule=rule,
        ran=ran,
    )
    if status.abandoned_at is not None:
        return replace(facts, status="abandoned")
    if status.expired:
        return replace(facts, status="expired")
    if status.response is not None:
        return replace(facts, status="answered_instead", response=status.response)
    if status.approved:
        return replace(facts, status="approved", edited=status.edited_kwargs is not None)
    return replace(facts, option=status.reject_option_name)


@dataclass(frozen=True)
class OutcomeTable:
    """A channel's markup for outcomes: a line per status (``{who}``, ``{comment}``,
    ``{comment_suffix}``, ``{response}``, ``{option}``, ``{edited}``, ``{approvals}``,
    ``{ran}``), with the channel's escaping and emphasis."""

    lines: Mapping[Status, str]
    text: Callable[[str], str] = str
    """Escapes agent- or person-supplied text for the channel."""
    strong: Callable[[str], str] = str
    """Emphasis for a name (already escaped)."""
    edited: str = " (with edited arguments)"


def render(facts: Outcome, table: OutcomeTable) -> str:
    """``facts`` in ``table``'s markup: one line."""
    text = table.text
    who = table.strong(text(facts.who or "someone"))
    if facts.via:
        who += f" via {text(facts.via)}"
    approvals = ""
    if len(facts.approvals) > 1:
        approvals = " (approvals: " + ", ".join(text(a) for a in facts.approvals) + ")"
    fields = {
        "who": who,
        "comment": text(facts.comment or ""),
        "comment_suffix": f": {text(facts.comment)}" if facts.comment else "",
        "response": text(facts.response or ""),
        "option": f" ({text(facts.option)})" if facts.option else "",
        "edited": table.edited if facts.edited else "",
        "approvals": approvals,
        "ran": f" (ran: {facts.ran})" if facts.ran else "",
    }
    return table.lines[facts.status].format_map(fields)
