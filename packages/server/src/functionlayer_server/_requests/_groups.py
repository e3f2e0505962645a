"""Review groups: a model turn's calls, reviewed on one page.

``spec.group_id`` is agent-supplied and inert: it only puts calls on one page. A group is keyed
by (project, creating token id, group id), so an agent can only add calls to its own groups,
and the same id used by another agent (or project) is another group. Each call is still its own
request, decided (with its own claim and audit) through ``decide_function_call``; a page
decides only the calls it showed."""

from __future__ import annotations

import json

from functionlayer.models import FunctionCall

from functionlayer_server._policy import Person
from functionlayer_server._store import RequestRecord

from ._part import Part
from ._records import FUNCTION_CALL, call_from

__all__ = ["MAX_GROUP_SIZE", "Groups"]

MAX_GROUP_SIZE = 50
"""At most this many calls are shown (and decidable) on one group page."""


def _group_key(record: RequestRecord) -> tuple[str, str, str] | None:
    group = json.loads(record.spec).get("group_id")
    if not isinstance(group, str) or not group:
        return None
    return record.project, record.created_by_token, group


class Groups(Part):
    """The review group of a call (``ApprovalService.group_members``)."""

    async def group_members(
        self, call_id: str, *, project: str, person: Person | None = None
    ) -> list[FunctionCall]:
        """The calls of the review group of ``call_id`` in ``project`` (oldest first, that call
        included; just that call if it has no group): same project, same creating token, same
        group id. With ``person``: only those the person may see."""
        anchor = await self.ledger.read(FUNCTION_CALL, call_id, project)
        key = _group_key(anchor)
        records = [anchor]
        if key is not None:
            records = await self.ledger.store.list_group(
                FUNCTION_CALL,
                project=key[0],
                token_id=key[1],
                group_id=key[2],
                limit=MAX_GROUP_SIZE,
            )
            if not any(r.call_id == anchor.call_id for r in records):
                records.append(anchor)
            records.sort(key=lambda r: (r.created_at, r.call_id))
            records = records[:MAX_GROUP_SIZE]
        members: list[FunctionCall] = []
        for record in records:
            call = call_from(await self.ledger.expire_if_due(record))
            if person is None or await self.authority.may_see(call, person, project):
                members.append(call)
        return members
