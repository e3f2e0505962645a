"""Discord: a review group's calls (one model turn, ``spec.group_id``) delivered to the same
target share one message: one embed per call (shown as in its own message, under the one
display rule) and one row of buttons per pending call, labelled with the call's number.

Which calls share a message is ``_group_messages``'s rule. A call joins only where its row can
be shown in full: not irreversible (its confirm step is its own message), one approval needed,
at most ``MAX_ROWS`` calls (Discord's five action rows), every button of the call in its row,
and every call's text within Discord's embed limits; otherwise it gets its own message. Each
call is still its own request: its own buttons, decision, claim and audit.
"""

from __future__ import annotations

from typing import Any

from functionlayer.display import format_context
from functionlayer.models import FunctionCall

from functionlayer_server._channels._base import needs_confirmation
from functionlayer_server._channels._discord_ids import (
    ACTION_APPROVE,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    custom_id,
)
from functionlayer_server._channels._discord_messages import (
    CONTENT_LIMIT,
    EMBED_LIMIT,
    EMBEDS_TOTAL,
    NO_MENTIONS,
    TOO_LONG,
    arguments_fit,
    button,
    clip,
    code_block,
    describe,
    option_label,
    outcome_text,
)
from functionlayer_server._schema import allowed
from functionlayer_server._service import FUNCTION_CALL, ApprovalService

__all__ = ["KEYS", "MAX_ROWS", "group_message", "joinable"]

MAX_ROWS = 5
KEYS = ("channel", "message")
_ROW_BUTTONS = 5
_OUTCOME_ROOM = 601


async def joinable(service: ApprovalService, call: FunctionCall) -> bool:
    """Whether ``call`` may be shown as a row of a group message."""
    if not call.spec.group_id or await needs_confirmation(service, call):
        return False
    project = await service.get_project(FUNCTION_CALL, call.call_id)
    if project is None or await service.approvals_required(call, project) > 1:
        return False
    return _buttons(call, 1) is not None


def _buttons(call: FunctionCall, number: int) -> list[dict[str, Any]] | None:
    """The row of a pending call (None if its buttons do not fit in one row)."""
    accepted = allowed(call.spec)
    buttons: list[dict[str, Any]] = []
    if "approve" in accepted and arguments_fit(call):
        buttons.append(button(f"{number}: Approve", custom_id(ACTION_APPROVE, call), 3))
    if "reject" in accepted:
        buttons.append(button(f"{number}: Reject…", custom_id(ACTION_REJECT, call), 4))
        for i, option in enumerate(call.spec.reject_options or []):
            label = f"{number}: {option_label(option)}"
            buttons.append(button(label, custom_id(ACTION_REJECT_OPTION, call, option=i), 2))
    return buttons if len(buttons) <= _ROW_BUTTONS else None


def _embed(call: FunctionCall, number: int, context: str | None) -> dict[str, Any]:
    lines = describe(call, context)
    if not call.completed and "approve" in allowed(call.spec) and not arguments_fit(call):
        lines.append(TOO_LONG)
    told = format_context(call.spec.context, limit=1200)
    if told:
        lines.append(code_block(told, 1300))
    if call.completed:
        lines.append(clip(outcome_text(call), 600))
    return {"title": f"Call {number}", "description": "\n".join(lines)}


def group_message(rows: list[FunctionCall], *, context: str | None) -> dict[str, Any] | None:
    """One message for the rows, or None if it would not show every call in full."""
    if len(rows) > MAX_ROWS:
        return None
    embeds = [_embed(row, n, context) for n, row in enumerate(rows, 1)]
    # Room for each pending call's outcome line, so a decision never makes the message too big.
    sizes = [
        len(e["title"]) + len(e["description"]) + (0 if row.completed else _OUTCOME_ROOM)
        for e, row in zip(embeds, rows, strict=True)
    ]
    if any(size > EMBED_LIMIT for size in sizes) or sum(sizes) > EMBEDS_TOTAL:
        return None
    components: list[dict[str, Any]] = []
    for n, row in enumerate(rows, 1):
        if row.completed:
            continue
        buttons = _buttons(row, n)
        if buttons is None:
            return None
        if buttons:
            components.append({"type": 1, "components": buttons})
    pending = sum(1 for r in rows if not r.completed)
    content = (
        f"**{len(rows)} calls the agent asked for in one turn** ({pending} pending); each is "
        "decided on its own, with the buttons numbered like it."
    )
    return {
        "content": clip(content, CONTENT_LIMIT),
        "embeds": embeds,
        "components": components,
        "allowed_mentions": NO_MENTIONS,
    }
