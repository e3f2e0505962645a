"""Discord ``custom_id`` values (at most 100 characters) and what they say.

A message's button: ``fl:<action>:<kind>:<ref>`` where ``kind`` is ``f`` (function call) or
``h`` (human contact) and ``ref`` the call id, or ``#<digest>`` for a call id too long to fit
(the channel remembers what the digest stands for). A modal's: ``m`` + the button's. The grant
form's (``_discord_grants``): ``fg:<part><picks>:<kind>:<ref>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from functionlayer.models import FunctionCall, HumanContact

__all__ = [
    "ACTION_APPROVE",
    "ACTION_CONFIRM",
    "ACTION_GRANT",
    "ACTION_REJECT",
    "ACTION_REJECT_OPTION",
    "ACTION_REPLY",
    "ACTION_RESPOND_OPTION",
    "CUSTOM_ID_LIMIT",
    "KINDS",
    "MAX_OPTIONS",
    "ButtonRef",
    "custom_id",
    "digest",
    "kind_of",
    "modal_id",
    "needs_digest",
    "parse_custom_id",
    "ref_of",
]

ACTION_APPROVE = "ap"
ACTION_CONFIRM = "ac"
"""The second, deliberate click that approves an irreversible function."""
ACTION_GRANT = "ag"
"""Approve and allow similar calls: opens the grant form (``_discord_grants``)."""
ACTION_REJECT = "rj"
ACTION_REJECT_OPTION = "ro"
ACTION_REPLY = "rp"
ACTION_RESPOND_OPTION = "rs"
MODAL_PREFIX = "m"

CUSTOM_ID_LIMIT = 100
MAX_OPTIONS = 20
_LONGEST_HEAD = 30
"""Room for the longest ``custom_id`` head (a grant form's, or an option's with the modal prefix)."""

KIND_CODES = {"function_call": "f", "human_contact": "h"}
KINDS = {v: k for k, v in KIND_CODES.items()}


def kind_of(request: FunctionCall | HumanContact) -> str:
    return "function_call" if isinstance(request, FunctionCall) else "human_contact"


def digest(kind: str, call_id: str) -> str:
    return hashlib.sha256(f"{kind}\n{call_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ButtonRef:
    """What a button or modal ``custom_id`` says: the action, the request kind, and the call id
    (or, for long call ids, ``digest`` to look up)."""

    action: str
    kind: str
    call_id: str | None
    digest: str | None
    option: int | None = None
    modal: bool = False


def custom_id(
    action: str, request: FunctionCall | HumanContact, *, option: int | None = None
) -> str:
    return ref_of(f"fl:{action}{'' if option is None else option}", request)


def ref_of(head: str, request: FunctionCall | HumanContact) -> str:
    """``<head>:<kind>:<ref>``: the call id, or its digest when it would not fit."""
    kind = kind_of(request)
    head = f"{head}:{KIND_CODES[kind]}:"
    if len(head) + len(request.call_id) <= CUSTOM_ID_LIMIT - 1:  # room for the modal prefix
        return head + request.call_id
    return head + "#" + digest(kind, request.call_id)


def modal_id(button_id: str) -> str:
    return MODAL_PREFIX + button_id


def parse_custom_id(value: str) -> ButtonRef | None:
    """The reference in a button/modal ``custom_id``, or None when it is not one of ours."""
    modal = value.startswith(MODAL_PREFIX + "fl:")
    if modal:
        value = value[len(MODAL_PREFIX) :]
    parts = value.split(":", 3)
    if len(parts) != 4 or parts[0] != "fl" or parts[2] not in KINDS or not parts[3]:
        return None
    action_text, ref = parts[1], parts[3]
    action, option = action_text[:2], action_text[2:]
    if action not in (
        ACTION_APPROVE,
        ACTION_CONFIRM,
        ACTION_GRANT,
        ACTION_REJECT,
        ACTION_REJECT_OPTION,
        ACTION_REPLY,
        ACTION_RESPOND_OPTION,
    ):
        return None
    wants_option = action in (ACTION_REJECT_OPTION, ACTION_RESPOND_OPTION)
    if wants_option != bool(option) or (option and not option.isdigit()):
        return None
    if ref.startswith("#"):
        call_id, ref_digest = None, ref[1:]
    else:
        call_id, ref_digest = ref, None
    return ButtonRef(
        action=action,
        kind=KINDS[parts[2]],
        call_id=call_id,
        digest=ref_digest,
        option=int(option) if option else None,
        modal=modal,
    )


def needs_digest(request: FunctionCall | HumanContact) -> bool:
    """Whether some ``custom_id`` of the request uses its digest (then it is remembered)."""
    return len(request.call_id) + _LONGEST_HEAD > CUSTOM_ID_LIMIT - 1
