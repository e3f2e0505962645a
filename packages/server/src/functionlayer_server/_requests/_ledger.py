"""The ledger: reading a request, waiting for its decision, expiring it, and every write to it.

``commit`` is the one compare-and-set on a request's version: the new status, its audit entry,
the webhook rows announcing it (``_outbox``) and the jobs the planners want for it (channel
deliveries and updates) are written in one store transaction, or nothing is. Only once the
transaction committed does it wake the long-polls, bump the change counter, wake the scheduler
and tell the listeners; a lost race writes and tells nothing. ``insert`` (a new request) and
``insert_decided`` (one decided at its creation by a rule or a grant) are the same write path
for a request that does not exist yet. The first answer wins, whichever process, channel or
person answers; a request is decided at most once and an execution claimed at most once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from functionlayer.models import FunctionCallStatus, HumanContactStatus

from functionlayer_server._errors import NotFoundError
from functionlayer_server._held import wake_at
from functionlayer_server._outbox import outbox_rows, webhook_event
from functionlayer_server._scheduler import Clock, Scheduler
from functionlayer_server._settings import Settings
from functionlayer_server._store import AuditRow, GrantRow, OutboxRow, RequestRecord, Store

from ._events import Change, Events, EventType
from ._presence import Presence
from ._records import (
    FUNCTION_CALL,
    AmbiguousCallIdError,
    Request,
    audit_row,
    dt,
    model,
    noun,
)
from ._validate import check_via
from ._waiters import Waiters, notice

__all__ = ["Ledger"]


@dataclass(eq=False)
class Ledger:
    """Reads, waits, expiry, and the one write path (see the module docstring)."""

    store: Store
    settings: Settings
    clock: Clock
    events: Events
    waiters: Waiters
    presence: Presence
    scheduler: Scheduler = field(init=False)
    """Runs expiries (``expire``) and the jobs the ledger writes; woken when it writes some."""

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(
            self.store,
            self.clock,
            self._expire_due,
            max_sleep=self.settings.scheduler_interval_seconds,
        )

    # -- reading ----------------------------------------------------------------------------

    async def read(
        self,
        kind: str,
        call_id: str,
        project: str | None,
        *,
        among: Collection[str] | None = None,
    ) -> RequestRecord:
        """The request with this call id in ``project``. Call ids are unique per project only:
        without a project, the one request of that id (of a project in ``among``, if given);
        several fail closed (``AmbiguousCallIdError``), none is ``NotFoundError``."""
        if project is not None:
            record = await self.store.get_request(kind, call_id, project)
        else:
            found = await self.find(kind, call_id, among=among)
            if len(found) > 1:
                raise AmbiguousCallIdError(
                    f"call_id {call_id!r} names a {noun(kind)} in several projects and this "
                    "request does not say which; nothing was done (open it from its project)"
                )
            record = found[0] if found else None
        if record is None:
            raise NotFoundError(f"no {noun(kind)} with call_id {call_id!r}")
        return await self.expire_if_due(record)

    async def find(
        self, kind: str, call_id: str, *, among: Collection[str] | None = None
    ) -> list[RequestRecord]:
        """Every request with this call id (of a project in ``among``, if given)."""
        return [
            r
            for r in await self.store.find_requests(kind, call_id)
            if among is None or r.project in among
        ]

    async def find_project(
        self, kind: str, call_id: str, *, among: Collection[str] | None = None
    ) -> str | None:
        """The project of the one request with this call id (of a project in ``among``);
        None if there is none, or several."""
        found = await self.find(kind, call_id, among=among)
        return found[0].project if len(found) == 1 else None

    async def expire_if_due(self, record: RequestRecord) -> RequestRecord:
        """Past its deadline counts as expired even if the scheduler has not run yet."""
        if record.completed or record.expires_at is None or record.expires_at > self.clock.now():
            return record
        await self.expire(record.kind, record.call_id, project=record.project)
        fresh = await self.store.get_request(record.kind, record.call_id, record.project)
        assert fresh is not None
        return fresh

    async def wait(
        self, kind: str, call_id: str, timeout: float, project: str | None, *, agent: bool
    ) -> RequestRecord:
        """The record once decided, or as it is when ``timeout`` seconds have passed: never
        earlier with a stale "pending" (a wake-up that finds it still pending waits on).
        ``agent``: note the poll, once the request was found (in the caller's project)."""
        if timeout <= 0 or project is None:
            record = await self.read(kind, call_id, project)
            if agent:
                self.presence.seen(record)
                agent = False
            if timeout <= 0:
                return record
            project = record.project
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (project, kind, call_id)
        while True:
            # Registered before the read: a decision committed after the read wakes ``fut``,
            # one committed before it is in the record. One read per round.
            fut = self.waiters.register(key)
            try:
                record = await self.read(kind, call_id, project)
                if agent:
                    self.presence.seen(record)
                    agent = False
                if record.completed or self.waiters.stopping:
                    return record
                wake = wake_at(deadline, fut)  # lighter than asyncio.wait: 10,000 waiters
                try:
                    await fut
                finally:
                    wake.cancel()
            finally:
                self.waiters.unregister(key, fut)
            if fut.done() and not fut.cancelled():
                decided = fut.result()
                if decided is not None:
                    return decided
            if self.waiters.stopping:  # shutting down: answer with what we know
                return record
            if loop.time() >= deadline:
                return await self.read(kind, call_id, project)

    # -- expiring ---------------------------------------------------------------------------

    async def _expire_due(self, kind: str, call_id: str, project: str) -> bool:
        return await self.expire(kind, call_id, project=project)

    async def expire(
        self,
        kind: str,
        call_id: str,
        *,
        project: str | None = None,
        reason: str | None = None,
        force: bool = False,
        actor: str = "functionlayer-server",
        via: str = "scheduler",
        abandoned: bool = False,
    ) -> bool:
        """Fail closed: a pending request past its deadline (or any pending one with
        ``force``, when the agent gives up waiting) becomes a rejection (function call) or an
        unanswered, expired contact (``abandoned``: marked ``abandoned_at``, audited
        ``abandoned``). False if it was already decided or is not due.
        Without ``project``: the one request with that call id (none or several: False)."""
        check_via(via)
        if project is None:
            project = await self.find_project(kind, call_id)
            if project is None:
                return False
        for _ in range(5):
            record = await self.store.get_request(kind, call_id, project)
            if record is None or record.completed:
                return False
            now = self.clock.now()
            if not force and (record.expires_at is None or record.expires_at > now):
                return False
            if reason is None:
                seconds = json.loads(record.spec).get("timeout_seconds")
                reason = (
                    f"Request expired: nobody answered within {seconds:g} seconds, so the call was not approved."
                    if isinstance(seconds, int | float)
                    else "Request expired: nobody answered before the deadline, so the call was not approved."
                )
            status: FunctionCallStatus | HumanContactStatus
            if kind == FUNCTION_CALL:
                status = FunctionCallStatus.model_validate_json(record.status)
                status.approved = False
                status.comment = reason
            else:
                status = HumanContactStatus.model_validate_json(record.status)
            status.expired = True
            status.responded_at = dt(now)
            status.responded_by = actor
            status.responded_via = via
            if abandoned:
                status.abandoned_at = dt(now)
            action = "abandoned" if abandoned else "expired"
            audit = audit_row(record, now, actor, via, action, {"reason": reason})
            if await self.commit(record, status.model_dump_json(), audit, "decided") is not None:
                return True
        return False

    # -- writing: the one path --------------------------------------------------------------

    async def commit(
        self, record: RequestRecord, status: str, audit: AuditRow, event: Change
    ) -> RequestRecord | None:
        """Compare-and-set ``record`` (as read) to ``status``, with ``audit`` and, for an
        announced ``event``, its webhook rows and planned jobs, in one transaction. None when
        the request changed since it was read (nothing written, nobody woken or told); else
        the new record, its waiters woken (``decided``) and its listeners told."""
        completed = event != "updated"
        new = record.changed(status, completed=completed)
        announced: EventType | None = None if event == "claimed" else event
        outbox, event_id = self.outbox(announced, new, audit)
        jobs, request = self.events.plan(announced, new, audit.at) if announced else ([], None)
        ok = await self.store.update_request(
            record.kind,
            record.call_id,
            project=record.project,
            status=status,
            completed=completed,
            expected_version=record.version,
            audit=audit,
            notify=notice(event, record),
            outbox=outbox,
            jobs=jobs,
        )
        if not ok:
            return None
        if event == "decided":
            self.waiters.wake((record.project, record.kind, record.call_id), new)
        self._written(announced, new, audit, event_id, jobs=bool(jobs), request=request)
        return new

    async def insert(
        self, record: RequestRecord, audit: AuditRow, guard: AbstractAsyncContextManager[None]
    ) -> tuple[RequestRecord, bool]:
        """Store a new request with its ``created`` audit entry, webhook rows and planned jobs
        in one transaction (``guard`` around the write: the pending quota). Returns the stored
        record and whether it was inserted now (else the one already under its call id)."""
        outbox, event_id = self.outbox("created", record, audit)
        jobs, request = self.events.plan("created", record, record.created_at)
        async with guard:
            stored, created = await self.store.insert_request(
                record, audit, notify=notice("created", record), outbox=outbox, jobs=jobs
            )
        if created:
            self._written(
                "created",
                stored,
                audit,
                event_id,
                jobs=bool(jobs) or record.expires_at is not None,
                request=request,
            )
        return stored, created

    async def insert_decided(
        self,
        record: RequestRecord,
        audits: Sequence[AuditRow],
        *,
        grant_use: tuple[str, int, float] | None = None,
    ) -> bool:
        """Store a request decided at its creation (``audits``: created, then the decision)
        with the decision's webhook rows, in one transaction; with ``grant_use`` the grant's
        use is a compare-and-set in it too. Nothing was delivered, so nothing is planned.
        False, and nothing written, when the call id exists or the grant changed."""
        decision = audits[-1]
        outbox, event_id = self.outbox("decided", record, decision)
        ok = await self.store.insert_decided_request(
            record,
            audits,
            notify=notice("decided", record),
            outbox=outbox,
            grant_use=grant_use,
        )
        if ok:
            self._written("decided", record, decision, event_id, jobs=False)
        return ok

    def _written(
        self,
        event: EventType | None,
        record: RequestRecord,
        audit: AuditRow,
        event_id: str | None,
        *,
        jobs: bool,
        request: Request | None = None,
    ) -> None:
        """After a committed write: bump the change counter, wake the scheduler if the
        write stored jobs (or a deadline), tell the listeners about an announced event."""
        self.waiters.bump()
        if jobs:
            self.scheduler.wake()
        if event is not None:
            self.events.emit(event, record, audit, event_id, request)

    def outbox(
        self, event: EventType | None, record: RequestRecord, audit: AuditRow
    ) -> tuple[list[OutboxRow], str | None]:
        """The webhook rows announcing ``event`` for ``record`` as it is after the change, and
        their event id; none when webhooks are off or the type is silent. They go into the
        write that makes the change (announced if and only if committed)."""
        urls = self.settings.webhook_urls
        name = webhook_event(event, audit.action) if urls and event is not None else None
        if name is None:
            return [], None
        rows = outbox_rows(
            urls,
            event=name,
            kind=record.kind,
            project=record.project,
            request=model(record).model_dump(mode="json"),
            action=audit.action,
            now=audit.at,
        )
        return rows, rows[0].event_id

    # -- grants (their rows are not requests; the same ledger writes them) --------------------

    async def add_grant(self, row: GrantRow, audit: AuditRow) -> None:
        await self.store.add_grant(row, audit)
        self.waiters.bump()

    async def revoke_grant(self, grant_id: str, *, now: float, by: str, audit: AuditRow) -> bool:
        revoked = await self.store.revoke_grant(grant_id, now=now, by=by, audit=audit)
        if revoked:
            self.waiters.bump()
        return revoked
