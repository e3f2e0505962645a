"""Every string FunctionLayer hands to an LLM is built here, once, and reused by every adapter.

They name the function, carry the human's own words, and say plainly whether anything ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from functionlayer._channel_models import ResponseOption
    from functionlayer._models import Execution

__all__ = [
    "already_ran_message",
    "claim_failed_message",
    "contact_failed_message",
    "edited_message",
    "expired_message",
    "invalid_arguments_message",
    "invalid_edit_message",
    "not_run_message",
    "reject_option_label",
    "rejection_message",
]


def _json(value: Any) -> str:
    import json  # only needed on the edit path; keeps `import functionlayer` light

    return json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)


def reject_option_label(options: Iterable[ResponseOption] | None, name: str | None) -> str | None:
    """How :func:`rejection_message` names the reject option a person chose (``name``): its
    title among ``options``, else the name as given; None when none was chosen."""
    if not name:
        return None
    chosen = next((option for option in options or () if option.name == name), None)
    return name if chosen is None else chosen.title or chosen.name


def rejection_message(
    fn: str, comment: str | None, option: str | None = None, *, by_policy: bool = False
) -> str:
    """The human rejected the call: nothing ran. ``option`` is the chosen reject option.
    ``by_policy``: the operator's rule rejected it (no human was asked); ``comment`` is the
    rule's reason."""
    if by_policy:
        reason = comment.strip() if comment and comment.strip() else "no reason given"
        return (
            f"{fn} was not run: the operator's policy rejects this call ({reason}). "
            "No human was asked and nothing was done."
        )
    who = f"User denied {fn}" + (f" ({option})" if option else "")
    if comment and comment.strip():
        return f"{who} with feedback: {comment}"
    return f"{who} without feedback."


def expired_message(fn: str, timeout: float | None) -> str:
    """Nobody answered in time: not a rejection (no one decided), and nothing ran."""
    within = f" within {timeout:g} seconds" if timeout else " before the deadline"
    return (
        f"{fn} was not run: timed out, no one answered{within}. The approval request expired "
        "without a decision (this is not a rejection). Nothing was done."
    )


def not_run_message(fn: str, reason: str, call_id: str | None = None) -> str:
    """No decision could be had (network, malformed answer, no terminal...): fail closed."""
    tail = (
        f" If the request reached an approver, it is kept under call id {call_id}."
        if call_id
        else ""
    )
    return f"{fn} was not run: could not get a human decision ({reason}). Nothing was done.{tail}"


def invalid_arguments_message(fn: str, problems: str) -> str:
    """The model's arguments do not fit the function: nobody was asked, nothing ran."""
    return (
        f"{fn} was not run: invalid arguments ({problems}). Nothing was done; call {fn} again "
        "with arguments that fit its parameters."
    )


def invalid_edit_message(fn: str, reason: str) -> str:
    return (
        f"{fn} was not run: the human approved it with edited arguments that do not fit its "
        f"signature ({reason}). Nothing was done."
    )


def edited_message(fn: str, proposed: dict[str, Any], approved: dict[str, Any], result: Any) -> str:
    """The human changed the arguments: the model must learn what actually ran."""
    return (
        f"The human approved {fn} with edited arguments {_json(approved)} instead of the proposed "
        f"{_json(proposed)}. {fn} ran with the edited arguments and returned: {result}"
    )


def contact_failed_message(reason: str) -> str:
    return f"No answer from a human: {reason}. Carry on without one or ask again later."


def claim_failed_message(fn: str, reason: str, call_id: str) -> str:
    """Approved, but the execution could not be recorded first: fail closed."""
    return (
        f"{fn} was approved but was not run: its execution could not be recorded ({reason}), "
        "and an approved call runs only once it is recorded, so that it runs at most once. "
        f"Nothing was done. The approval is kept under call id {call_id}."
    )


def already_ran_message(fn: str, call_id: str, execution: Execution) -> str:
    """The approval under this call id was already used: the body is not run again."""
    started = _when(execution.started_at)
    head = f"{fn} was not run again: call id {call_id} was approved once and already ran"
    if execution.outcome == "returned":
        return f"{head} (at {_when(execution.finished_at) or started}). It returned: {execution.summary}"
    if execution.outcome == "raised":
        return (
            f"{head} (at {_when(execution.finished_at) or started}). It raised: {execution.summary}"
        )
    return (
        f"{head}: it started at {started or 'an unknown time'}, outcome unknown (it never "
        "reported how it ended). It is not run again automatically; check its effects before "
        "asking for a new approval under a new call id."
    )


def _when(moment: Any) -> str:
    if moment is None:
        return ""
    from datetime import UTC

    return str(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
