"""Every string FunctionLayer hands to an LLM is built here, once, and reused by every adapter.

They name the function, carry the human's own words, and say plainly whether anything ran.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "contact_failed_message",
    "edited_message",
    "expired_message",
    "invalid_edit_message",
    "not_run_message",
    "rejection_message",
]


def _json(value: Any) -> str:
    import json  # only needed on the edit path; keeps `import functionlayer` light

    return json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)


def rejection_message(fn: str, comment: str | None, option: str | None = None) -> str:
    """The human rejected the call: nothing ran. ``option`` is the chosen reject option."""
    who = f"User denied {fn}" + (f" ({option})" if option else "")
    if comment and comment.strip():
        return f"{who} with feedback: {comment}"
    return f"{who} without feedback."


def expired_message(fn: str, timeout: float | None) -> str:
    within = f" within {timeout:g} seconds" if timeout else " before the deadline"
    return (
        f"{fn} was not run: no human answered{within}, so the request expired and was "
        "rejected. Nothing was done."
    )


def not_run_message(fn: str, reason: str, call_id: str | None = None) -> str:
    """No decision could be had (network, malformed answer, no terminal...): fail closed."""
    tail = (
        f" If the request reached an approver, it is kept under call id {call_id}."
        if call_id
        else ""
    )
    return f"{fn} was not run: could not get a human decision ({reason}). Nothing was done.{tail}"


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
