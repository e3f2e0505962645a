"""What an answer does to a request: a person's decision on a function call (approve, reject,
approve with edits, answer instead, count towards a quorum of distinct persons) and the
answer to a human contact, checked against the function's schema and allowed decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from functionlayer import (
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
    ResponseOption,
)

from functionlayer_server import _schema
from functionlayer_server._policy._common import PolicyError
from functionlayer_server._policy._decided import decided_message
from functionlayer_server._policy._directory import Person
from functionlayer_server._policy._effective import Effective

__all__ = [
    "Decision",
    "Transition",
    "answer_contact",
    "apply_decision",
    "option_text",
    "resolve_option",
]


@dataclass(frozen=True)
class Decision:
    """What a person asked for, whatever the channel: the fields a channel may set."""

    approved: bool | None = None
    comment: str | None = None
    reject_option_name: str | None = None
    edited_kwargs: dict[str, Any] | None = None
    response: str | None = None
    confirmed_irreversible: bool = False
    """The deliberate second step for approving an irreversible function."""

    @classmethod
    def from_status(cls, status: FunctionCallStatus) -> Decision:
        """The decision a status records: each field of the same name (the second step only
        when it is true)."""
        values = {f.name: getattr(status, f.name) for f in fields(cls)}
        return cls(**{**values, "confirmed_irreversible": status.confirmed_irreversible is True})


@dataclass(frozen=True)
class Transition:
    """The new status, whether the request is now decided, and the audit action."""

    status: FunctionCallStatus | HumanContactStatus
    completed: bool
    action: str
    details: dict[str, Any]


def resolve_option(
    options: Sequence[ResponseOption] | None, name: str, what: str
) -> ResponseOption:
    for option in options or ():
        if option.name == name:
            return option
    known = ", ".join(repr(o.name) for o in options or ()) or "none"
    raise PolicyError("invalid_decision", f"unknown {what} {name!r} (this request offers: {known})")


def _invalid(message: str) -> PolicyError:
    return PolicyError("invalid_decision", message)


def apply_decision(
    call: FunctionCall, effective: Effective, person: Person, decision: Decision
) -> Transition:
    """What ``person``'s ``decision`` does to ``call``: approve, reject (with feedback, or a
    reject option), approve with edits, answer instead, or count towards a quorum of distinct
    persons. Raises ``already_decided`` or ``invalid_decision``."""
    current = call.status or FunctionCallStatus()
    if current.approved is not None:
        raise PolicyError("already_decided", decided_message(call))
    status = current.model_copy()
    required = effective.approvals_required
    comment = decision.comment.strip() if decision.comment and decision.comment.strip() else None
    # The function's schema and allowed decisions (``_schema``): refuse before any change.
    edits: dict[str, Any] | None = None
    if isinstance(decision.edited_kwargs, dict):
        edits = _schema.merge_edits(call.spec, decision.edited_kwargs)
    try:
        _schema.check_allowed(
            call.spec,
            _schema.decision_kind(
                call.spec,
                approved=decision.approved,
                edited_kwargs=decision.edited_kwargs,
                response=decision.response,
            ),
        )
    except _schema.SchemaProblem as exc:
        raise _invalid(exc.message) from None
    if decision.response is not None:
        if decision.approved is True:
            raise _invalid("a response in place of running the function cannot also approve it")
        if decision.edited_kwargs is not None:
            raise _invalid("give either edited_kwargs (approve with edits) or response, not both")
        if not decision.response.strip():
            raise _invalid("response must not be empty")
        status.approved = False
        status.response = decision.response
        status.comment = comment
        return Transition(status, True, "responded", {"response": decision.response})
    if decision.approved is None:
        raise _invalid(
            "approved must be true or false (or give a response to answer instead of running)"
        )
    if decision.approved is False:
        if decision.edited_kwargs is not None:
            raise _invalid("edited_kwargs only make sense with approved=true")
        option_name = decision.reject_option_name
        if option_name is not None:
            option = resolve_option(call.spec.reject_options, option_name, "reject option")
            comment = comment or option_text(option)
        if comment is None:
            raise _invalid("a rejection needs a comment: it is the feedback the agent gets")
        status.approved = False
        status.comment = comment
        status.reject_option_name = option_name
        return Transition(
            status, True, "rejected", {"comment": comment, "reject_option_name": option_name}
        )
    if decision.reject_option_name is not None:
        raise _invalid("reject_option_name only makes sense with approved=false")
    if effective.irreversible and not decision.confirmed_irreversible:
        raise PolicyError(
            "confirmation_required",
            f"{call.spec.fn} is irreversible: approving it takes a second, deliberate step "
            "(confirm that it cannot be undone; over the API send confirmed_irreversible=true)",
        )
    if decision.edited_kwargs is not None and not isinstance(decision.edited_kwargs, dict):
        raise _invalid("edited_kwargs must be an object")
    if edits is not None:
        problems = _schema.edit_problems(call.spec, edits)
        if problems:
            raise _invalid(_schema.describe(problems))
        if edits == call.spec.kwargs:
            edits = None  # edits that change nothing: a plain approval, no phantom edits
    if required > 1:
        if edits is not None:
            raise _invalid(
                "this call needs several approvals; approving with edited arguments is not possible"
            )
        approvals = list(status.approvals or [])
        if person.name in approvals:
            raise PolicyError(
                "already_decided",
                f"{person.name} already approved function call {call.call_id!r} "
                f"({len(approvals)} of {required} approvals); one person counts once",
            )
        approvals.append(person.name)
        status.approvals = approvals
        details: dict[str, Any] = {
            "approvals": len(approvals),
            "required": required,
            "comment": comment,
        }
        if len(approvals) < required:
            return Transition(status, False, "approval_recorded", details)
        status.approved = True
        status.comment = comment
        return Transition(status, True, "approved", details)
    status.approved = True
    status.comment = comment
    status.edited_kwargs = edits
    return Transition(status, True, "approved", {"comment": comment, "edited_kwargs": edits})


def option_text(option: ResponseOption) -> str:
    """What picking an option without writing anything stores (the rejection's feedback or the
    contact's answer): the same in every channel."""
    return option.prompt_fill or option.description or option.title or option.name


def answer_contact(
    contact: HumanContact, response: str | None, response_option_name: str | None
) -> Transition:
    current = contact.status or HumanContactStatus()
    if current.completed:
        raise PolicyError("already_decided", decided_message(contact))
    if response_option_name is not None:
        option = resolve_option(
            contact.spec.response_options, response_option_name, "response option"
        )
        if response is None or not response.strip():
            response = option_text(option)
    if response is None or not response.strip():
        raise _invalid("response must not be empty")
    status = current.model_copy()
    status.response = response
    status.response_option_name = response_option_name
    return Transition(
        status,
        True,
        "responded",
        {"response": response, "response_option_name": response_option_name},
    )
