"""Lists and pages of requests: for the API (by project, run, pending or not) and for a person
(every request of their projects the policy lets them see: the inbox)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TypedDict, Unpack

from functionlayer.models import FunctionCall, HumanContact

from functionlayer_server._policy import Person
from functionlayer_server._store import RequestRecord

from ._part import Part
from ._records import FUNCTION_CALL, HUMAN_CONTACT, Request, call_from, contact_from, model

__all__ = ["Filters", "Listing"]


class Filters(TypedDict, total=False):
    """What a list is narrowed to (each one left out: no narrowing, a page of 200)."""

    pending: bool | None
    """True: pending only; False: decided only."""
    visible_to: Person | None
    """A person: every request of their projects the policy lets them see."""
    project: str | None
    run_id: str | None
    limit: int
    offset: int


class Listing(Part):
    """Lists for the API and pages for the inbox."""

    async def _list(
        self, kind: str, *, every: bool = False, **filters: Unpack[Filters]
    ) -> tuple[list[RequestRecord], int]:
        """A page of records, newest first, and how many match in all (``every``: all of them,
        no page). For a person: every request of their projects the policy lets them see
        (pending ones without any cap; decided ones from the most recent history)."""
        store = self.ledger.store
        pending, visible_to = filters.get("pending"), filters.get("visible_to")
        project, run_id = filters.get("project"), filters.get("run_id")
        limit = max(1, min(filters.get("limit", 200), 1000))
        offset = max(0, filters.get("offset", 0))
        if visible_to is None:
            records = await store.list_requests(
                kind, project=project, pending=pending, run_id=run_id, limit=offset + limit
            )
        else:
            projects = sorted(visible_to.projects) if project is None else [project]
            bound = 1_000_000 if pending is True else (offset + limit) * 10
            records = []
            for proj in projects:
                records.extend(
                    await store.list_requests(
                        kind, project=proj, pending=pending, run_id=run_id, limit=bound
                    )
                )
            records.sort(key=lambda r: (-r.created_at, r.call_id))
        now = self.ledger.clock.now()
        result: list[RequestRecord] = []
        for record in records:
            if not record.completed and record.expires_at is not None and record.expires_at <= now:
                record = await self.ledger.expire_if_due(record)
                if pending is True:
                    continue
            if visible_to is not None and not await self.authority.may_see(
                model(record), visible_to, record.project
            ):
                continue
            result.append(record)
        if every:
            return result, len(result)
        return result[offset : offset + limit], len(result)

    async def list_function_calls(self, **filters: Unpack[Filters]) -> list[FunctionCall]:
        """Newest first."""
        records, _ = await self._list(FUNCTION_CALL, **filters)
        return [call_from(r) for r in records]

    async def list_human_contacts(self, **filters: Unpack[Filters]) -> list[HumanContact]:
        """Newest first."""
        records, _ = await self._list(HUMAN_CONTACT, **filters)
        return [contact_from(r) for r in records]

    async def inbox_page(
        self, kind: str, person: Person, *, pending: bool, limit: int, offset: int = 0
    ) -> tuple[list[Request], int]:
        """One page of what ``person`` may see, and the total (the inbox pages; nothing is
        silently dropped)."""
        records, total = await self._list(
            kind, pending=pending, visible_to=person, limit=limit, offset=offset
        )
        return [model(r) for r in records], total

    async def inbox_pending(self, kind: str, person: Person) -> list[Request]:
        """Every pending request ``person`` may see, newest first, in one pass (the inbox
        sorts and pages them itself; how many there are is bounded by the agent tokens'
        pending quotas)."""
        records, _ = await self._list(kind, every=True, pending=True, visible_to=person)
        return [model(r) for r in records]

    async def requested_by(
        self, kind: str, call_id: str, *, among: Collection[str]
    ) -> tuple[str, str] | None:
        """The name of the agent token that created the one request with this call id (of a
        project in ``among``) and its project, for the people deciding it (a label: names are
        never ownership, see ``created_by_token``); None if there is none, or several."""
        found = await self.ledger.find(kind, call_id, among=among)
        if len(found) != 1:
            return None
        return found[0].created_by, found[0].project
