"""Which calls of a review group (one model turn, ``spec.group_id``) share one chat message.

A channel posts the group's first call as usual; each later call of the group delivered to the
same target joins that message (its delivery record names the same place, so a click on its row
is authorised like a click on its own message). Which calls form a group is the service's rule
(``ApprovalService.group_members``: same project, same creating token, same group id); where a
message is is the channel's (``keys``: the delivery record's fields that name it, e.g.
``("channel", "ts")`` in Slack).
"""

from __future__ import annotations

from typing import Any

from functionlayer.models import FunctionCall

from functionlayer_server._channels._base import DeliveryStore
from functionlayer_server._service import FUNCTION_CALL, ApprovalService

__all__ = ["message_rows", "open_group_message"]


def _place(data: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(data.get(key)) for key in keys)


async def message_rows(
    service: ApprovalService,
    deliveries: DeliveryStore,
    call: FunctionCall,
    *,
    via: str,
    keys: tuple[str, ...],
    place: tuple[str, ...],
) -> list[FunctionCall]:
    """The calls of ``call``'s group delivered into the message at ``place``, oldest first."""
    project = await service.get_project(FUNCTION_CALL, call.call_id)
    if project is None:
        return [call]
    rows: list[FunctionCall] = []
    for member in await service.group_members(call.call_id, project=project):
        for data in await deliveries.load_deliveries(
            member.call_id, channel=via, kind=FUNCTION_CALL
        ):
            if _place(data, keys) == place:
                rows.append(member)
                break
    return rows


async def open_group_message(
    service: ApprovalService,
    deliveries: DeliveryStore,
    call: FunctionCall,
    *,
    via: str,
    keys: tuple[str, ...],
    target: str,
    max_rows: int,
) -> tuple[tuple[str, ...], list[FunctionCall]] | None:
    """The place of the message of ``call``'s group already posted to ``target`` that it may
    join (and the rows it would then hold), or None."""
    if not call.spec.group_id:
        return None
    project = await service.get_project(FUNCTION_CALL, call.call_id)
    if project is None:
        return None
    for member in await service.group_members(call.call_id, project=project):
        if member.call_id == call.call_id:
            continue
        for data in await deliveries.load_deliveries(
            member.call_id, channel=via, kind=FUNCTION_CALL
        ):
            if not data.get("group") or data.get("target") != target:
                continue
            place = _place(data, keys)
            rows = await message_rows(service, deliveries, member, via=via, keys=keys, place=place)
            if len(rows) >= max_rows or any(r.call_id == call.call_id for r in rows):
                continue  # full, or this call is in it already (a reminder posts anew)
            return place, [*rows, call]
    return None
