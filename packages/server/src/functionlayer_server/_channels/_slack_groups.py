"""Slack: a review group's calls (one model turn, ``spec.group_id``) delivered to the same
target share one message, one row per call, each row with its own buttons.

The first call of the group is posted as usual; each later call of the group delivered to the
same target joins that message (its delivery record names the same channel and ts, so a click
on its row is authorised like a click on its own message) and the message is rebuilt from the
calls delivered into it. Rows use the single-request blocks (the one display rule: Approve only
when the row shows every argument in full). A message holds at most ``MAX_ROWS`` calls; a
further call gets its own message. Which calls form a group is the service's rule
(``ApprovalService.group_members``: same project, same creating token, same group id).
"""

from __future__ import annotations

from typing import Any

from functionlayer.models import FunctionCall

from functionlayer_server._channels import _group_messages as shared
from functionlayer_server._channels._base import DeliveryStore
from functionlayer_server._channels._slack_blocks import decided_blocks, request_blocks
from functionlayer_server._service import ApprovalService

__all__ = ["MAX_ROWS", "group_blocks", "group_text", "message_rows", "open_group_message"]

VIA = "slack"
MAX_ROWS = 6
MAX_BLOCKS = 50


def _progress(call: FunctionCall) -> str | None:
    if call.spec.policy is None or call.spec.policy.approvals_required <= 1:
        return None
    have = len(call.status.approvals or []) if call.status else 0
    return f"{have} of {call.spec.policy.approvals_required} approvals so far."


def group_blocks(
    rows: list[FunctionCall], *, context: str | None, base_url: str
) -> list[dict[str, Any]] | None:
    """One message for the rows, or None if it would not fit in a Slack message."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{len(rows)} calls the agent asked for in one turn; each is "
                    "decided on its own.",
                }
            ],
        }
    ]
    for index, row in enumerate(rows):
        blocks.append({"type": "divider"})
        part = (
            decided_blocks(row, context=context)
            if row.completed
            else request_blocks(row, context=context, base_url=base_url, progress=_progress(row))
        )
        for block in part:
            if "block_id" in block:  # block ids must be unique within a message
                block = {**block, "block_id": f"{block['block_id']}:{index}"}
            blocks.append(block)
    return blocks if len(blocks) <= MAX_BLOCKS else None


def group_text(rows: list[FunctionCall]) -> str:
    pending = sum(1 for r in rows if not r.completed)
    return f"Approval requested: {len(rows)} calls ({pending} pending)"


_KEYS = ("channel", "ts")


async def message_rows(
    service: ApprovalService,
    deliveries: DeliveryStore,
    call: FunctionCall,
    channel: str,
    ts: str,
) -> list[FunctionCall]:
    """The calls of ``call``'s group delivered into the message (channel, ts), oldest first."""
    return await shared.message_rows(
        service, deliveries, call, via=VIA, keys=_KEYS, place=(channel, ts)
    )


async def open_group_message(
    service: ApprovalService, deliveries: DeliveryStore, call: FunctionCall, target: str
) -> tuple[str, str, list[FunctionCall]] | None:
    """The message of ``call``'s group already posted to ``target`` that it may join (and the
    rows it would then hold), or None."""
    found = await shared.open_group_message(
        service, deliveries, call, via=VIA, keys=_KEYS, target=target, max_rows=MAX_ROWS
    )
    if found is None:
        return None
    (channel, ts), rows = found
    return channel, ts, rows
