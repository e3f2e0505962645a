"""The storage interface and the SQL shared by SQLite and PostgreSQL.

Every method is one short transaction. Requests are stored as JSON text (spec and status), with
the columns the server filters on (project, run_id, completed, expires_at) kept alongside, and a
``version`` that makes every status change a compare-and-set: two concurrent answers cannot both
win, across threads or server processes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AuditRow",
    "GrantRow",
    "IdentityTakenError",
    "JobRow",
    "NewJob",
    "OutboxRow",
    "PersonRow",
    "RequestRecord",
    "SessionRow",
    "Statement",
    "Store",
    "TokenRow",
    "UserRow",
]

Statement = tuple[str, Sequence[Any]]
NotifyCallback = Callable[[str], None]


@dataclass(frozen=True)
class RequestRecord:
    kind: str
    """``function_call`` or ``human_contact``."""
    call_id: str
    project: str
    run_id: str
    spec: str
    status: str
    completed: bool
    expires_at: float | None
    created_at: float
    version: int
    created_by: str = ""
    """The name of the agent token that created the request (for people: the audit says
    ``agent:<name>``). Names are labels, never ownership: see ``created_by_token``."""
    created_by_token: str = ""
    """The immutable id of the agent token that created the request: only that token may give
    it up, claim its execution or report the outcome (``_ownership``). Empty for a request
    created without an agent token, or (with a ``created_by`` name) before ids were recorded."""

    def changed(self, status: str, *, completed: bool) -> RequestRecord:
        """This record after a compare-and-set that stored ``status``."""
        return RequestRecord(
            self.kind,
            self.call_id,
            self.project,
            self.run_id,
            self.spec,
            status,
            completed,
            self.expires_at,
            self.created_at,
            self.version + 1,
            self.created_by,
            self.created_by_token,
        )

    def to_json(self) -> str:
        """The request as the protocol's JSON (``FunctionCall`` / ``HumanContact``): spec and
        status are stored as the models' JSON, so they are spliced in, not decoded and
        re-encoded."""
        return (
            f'{{"run_id":{json.dumps(self.run_id)},"call_id":{json.dumps(self.call_id)},'
            f'"spec":{self.spec},"status":{self.status}}}'
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RequestRecord:
        return cls(
            kind=row[0],
            call_id=row[1],
            project=row[2],
            run_id=row[3],
            spec=row[4],
            status=row[5],
            completed=bool(row[6]),
            expires_at=row[7],
            created_at=row[8],
            version=row[9],
            created_by=row[10] or "",
            created_by_token=row[11] or "",
        )


@dataclass(frozen=True)
class AuditRow:
    kind: str
    call_id: str
    at: float
    actor: str
    via: str
    action: str
    details: dict[str, Any]
    project: str | None = None
    """The request's project (call ids are unique per project only). None on entries written
    before projects were recorded whose request could not be told apart."""


@dataclass(frozen=True)
class TokenRow:
    project: str
    name: str
    role: str = "agent"
    """``agent`` (creates and reads requests, gives up its own) or ``approver`` (decides as
    the person ``approver``)."""
    approver: str | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    token_id: str = ""
    """Immutable and unique: what owns the requests the token creates (names may repeat over
    time, e.g. revoke then re-issue)."""


@dataclass(frozen=True)
class GrantRow:
    """A person's grant of future calls (``_grants.Grant`` is its model; ``scope`` is JSON)."""

    id: str
    project: str
    fn: str
    scope: str
    token_id: str | None
    person: str
    created_at: float
    expires_at: float
    max_uses: int
    uses: int = 0
    revoked_at: float | None = None
    revoked_by: str | None = None
    source_call_id: str = ""
    token_name: str = ""


_GRANT_COLS = (
    "id, project, fn, scope, token_id, person, created_at, expires_at, max_uses, uses, "
    "revoked_at, revoked_by, source_call_id, token_name"
)


def _grant_from(r: Sequence[Any]) -> GrantRow:
    return GrantRow(
        id=r[0],
        project=r[1],
        fn=r[2],
        scope=r[3],
        token_id=r[4],
        person=r[5],
        created_at=r[6],
        expires_at=r[7],
        max_uses=int(r[8]),
        uses=int(r[9]),
        revoked_at=r[10],
        revoked_by=r[11],
        source_call_id=r[12] or "",
        token_name=r[13] or "",
    )


@dataclass(frozen=True)
class UserRow:
    username: str
    email: str | None
    slack_user_id: str | None
    password_hash: str
    disabled: bool = False


@dataclass(frozen=True)
class PersonRow:
    """A person of the directory with every linked identity and project."""

    name: str
    password_hash: str
    """Empty when the person has no inbox login."""
    disabled: bool
    identities: tuple[tuple[str, str], ...]
    """``(kind, value)``: ``email``, ``slack``, ``discord``."""
    projects: tuple[str, ...]


@dataclass(frozen=True)
class SessionRow:
    username: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class JobRow:
    id: int
    topic: str
    payload: dict[str, Any]
    due_at: float


@dataclass(frozen=True)
class NewJob:
    """A scheduler job to store. The service writes the jobs a change needs (a channel
    delivery, a channel update) in the transaction that makes the change, like outbox rows:
    the change is stored with its jobs or not at all."""

    topic: str
    payload: dict[str, Any]
    due_at: float


def _job_statements(jobs: Sequence[NewJob]) -> list[Statement]:
    """One INSERT for all of ``jobs`` (none without jobs)."""
    if not jobs:
        return []
    params: list[Any] = []
    for job in jobs:
        params.extend((job.topic, json.dumps(job.payload, sort_keys=True), job.due_at))
    values = ", ".join(["(?, ?, ?)"] * len(jobs))
    return [(f"INSERT INTO fl_jobs (topic, payload, due_at) VALUES {values}", params)]


@dataclass(frozen=True)
class OutboxRow:
    """One webhook delivery waiting in (or done with) the outbox: an event for one URL.

    The service writes it in the transaction that makes the change it announces; the webhook
    worker claims it (a compare-and-set on ``attempts``), POSTs ``payload`` and records the
    outcome. Rows are kept after delivery or final failure (``delivered_at`` / ``failed_at``).
    """

    event_id: str
    """The delivery id: the same for every URL and every retry of one event."""
    type: str
    """The webhook event type, e.g. ``function_call.completed``."""
    kind: str
    call_id: str
    url: str
    payload: str
    """The JSON body, as sent (signed byte for byte)."""
    created_at: float
    id: int = 0
    attempts: int = 0
    next_attempt_at: float = 0.0
    """When the row is due; while claimed, when the claim goes stale."""
    delivered_at: float | None = None
    failed_at: float | None = None
    last_error: str | None = None

    @property
    def pending(self) -> bool:
        return self.delivered_at is None and self.failed_at is None


_OUTBOX_COLS = (
    "id, event_id, type, kind, call_id, url, payload, created_at, attempts, next_attempt_at, "
    "delivered_at, failed_at, last_error"
)


def _outbox_from(r: Sequence[Any]) -> OutboxRow:
    return OutboxRow(
        id=int(r[0]),
        event_id=r[1],
        type=r[2],
        kind=r[3],
        call_id=r[4],
        url=r[5],
        payload=r[6],
        created_at=r[7],
        attempts=int(r[8]),
        next_attempt_at=r[9],
        delivered_at=r[10],
        failed_at=r[11],
        last_error=r[12],
    )


def _outbox_statements(rows: Sequence[OutboxRow]) -> list[Statement]:
    return [
        (
            "INSERT INTO fl_outbox (event_id, type, kind, call_id, url, payload, created_at, "
            "attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) "
            "ON CONFLICT (event_id, url) DO NOTHING",
            (
                row.event_id,
                row.type,
                row.kind,
                row.call_id,
                row.url,
                row.payload,
                row.created_at,
                row.created_at,
            ),
        )
        for row in rows
    ]


_REQ_COLS = (
    "kind, call_id, project, run_id, spec, status, completed, expires_at, created_at, version, "
    "created_by, created_by_token"
)

NOTIFY_CHANNEL = "functionlayer"


class Store(ABC):
    """Async storage. Subclasses provide the three primitives; the SQL lives here."""

    #: True when other server processes may share the database (then they notify each other).
    shared = False

    # -- primitives -------------------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def _fetch_many(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """For queries that may return many rows (listings, exports)."""
        return await self._fetch(sql, params)

    @abstractmethod
    async def _transaction(
        self, statements: Sequence[Statement], *, guard_first: bool, guarded: int = 1
    ) -> bool:
        """Run the statements in one transaction. With ``guard_first``, roll back and return
        False when the first statement (the first ``guarded`` ones) changed no row."""

    def _notify_statement(self, payload: str) -> Statement | None:
        """A statement that tells other server processes about a change (none for SQLite)."""
        return None

    def _audit_statements(self, audit: AuditRow, notify: str | None) -> list[Statement]:
        """The audit row of a change and, if ``notify``, the notification to other server
        processes (a store may write both with one statement)."""
        statements = [_audit_statement(audit)]
        if notify is not None and (stmt := self._notify_statement(notify)) is not None:
            statements.append(stmt)
        return statements

    async def listen(self, callback: NotifyCallback) -> None:  # noqa: B027 - optional hook
        """Call ``callback(payload)`` for changes made by other processes (PostgreSQL)."""

    # -- requests ---------------------------------------------------------------------------

    async def insert_request(
        self,
        record: RequestRecord,
        audit: AuditRow,
        notify: str | None = None,
        outbox: Sequence[OutboxRow] = (),
        jobs: Sequence[NewJob] = (),
    ) -> tuple[RequestRecord, bool]:
        """Insert unless ``(kind, call_id)`` exists in the record's project; returns the stored
        record and whether it was inserted now. The ``outbox`` rows (webhooks announcing it) and
        the ``jobs`` (channel deliveries) are written in the same transaction, so they exist
        exactly when the request does."""
        statements: list[Statement] = [
            (
                f"INSERT INTO fl_requests ({_REQ_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, call_id, project) DO NOTHING",
                (
                    record.kind,
                    record.call_id,
                    record.project,
                    record.run_id,
                    record.spec,
                    record.status,
                    int(record.completed),
                    record.expires_at,
                    record.created_at,
                    record.version,
                    record.created_by,
                    record.created_by_token,
                ),
            ),
            *self._audit_statements(audit, notify),
            *_outbox_statements(outbox),
            *_job_statements(jobs),
        ]
        inserted = await self._transaction(statements, guard_first=True)
        if inserted:
            return record, True
        existing = await self.get_request(record.kind, record.call_id, record.project)
        if existing is None:  # deleted in between: cannot happen (nothing deletes requests)
            raise RuntimeError(f"request {record.call_id!r} vanished")
        return existing, False

    async def get_request(self, kind: str, call_id: str, project: str) -> RequestRecord | None:
        """The request of ``project`` with this call id (call ids are unique per project)."""
        rows = await self._fetch(
            f"SELECT {_REQ_COLS} FROM fl_requests WHERE kind = ? AND call_id = ? AND project = ?",
            (kind, call_id, project),
        )
        return RequestRecord.from_row(rows[0]) if rows else None

    async def find_requests(self, kind: str, call_id: str) -> list[RequestRecord]:
        """Every project's request with this call id (for paths that know no project yet:
        the caller must tell them apart, or refuse)."""
        rows = await self._fetch(
            f"SELECT {_REQ_COLS} FROM fl_requests WHERE kind = ? AND call_id = ? "
            "ORDER BY project LIMIT 50",
            (kind, call_id),
        )
        return [RequestRecord.from_row(r) for r in rows]

    async def list_requests(
        self,
        kind: str,
        *,
        project: str | None = None,
        pending: bool | None = None,
        run_id: str | None = None,
        limit: int = 200,
    ) -> list[RequestRecord]:
        where = ["kind = ?"]
        params: list[Any] = [kind]
        if project is not None:  # the expression of the index fl_requests_listing
            where = ["(kind || ':' || project) = ?"]
            params = [f"{kind}:{project}"]
        if pending is not None:
            where.append("completed = ?")
            params.append(0 if pending else 1)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        params.append(limit)
        rows = await self._fetch_many(
            f"SELECT {_REQ_COLS} FROM fl_requests WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, call_id LIMIT ?",
            params,
        )
        return [RequestRecord.from_row(r) for r in rows]

    async def update_request(
        self,
        kind: str,
        call_id: str,
        *,
        project: str,
        status: str,
        completed: bool,
        expected_version: int,
        audit: AuditRow,
        notify: str | None = None,
        outbox: Sequence[OutboxRow] = (),
        jobs: Sequence[NewJob] = (),
    ) -> bool:
        """Compare-and-set the status; False when someone else changed it first. The
        ``outbox`` rows and ``jobs`` are written only if the change is (same transaction)."""
        statements: list[Statement] = [
            (
                "UPDATE fl_requests SET status = ?, completed = ?, version = version + 1 "
                "WHERE kind = ? AND call_id = ? AND project = ? AND version = ?",
                (status, int(completed), kind, call_id, project, expected_version),
            ),
            *self._audit_statements(audit, notify),
            *_outbox_statements(outbox),
            *_job_statements(jobs),
        ]
        return await self._transaction(statements, guard_first=True)

    # -- grants (see _grants): made by persons, used by calls, revoked at once ----------------

    async def insert_decided_request(
        self,
        record: RequestRecord,
        audits: Sequence[AuditRow],
        *,
        notify: str | None = None,
        outbox: Sequence[OutboxRow] = (),
        jobs: Sequence[NewJob] = (),
        grant_use: tuple[str, int, float] | None = None,
    ) -> bool:
        """Insert a request decided at its creation (by an operator rule or a grant) with its
        audit entries, webhook rows and jobs, in one transaction. ``grant_use``: ``(grant id,
        uses read, now)``: the grant's use count goes from the count read to the next, only
        if still live and unchanged (a compare-and-set): concurrent calls never exceed its
        uses. False, and nothing written, when the call id exists or the grant changed."""
        statements: list[Statement] = [
            (
                f"INSERT INTO fl_requests ({_REQ_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, call_id, project) DO NOTHING",
                (
                    record.kind,
                    record.call_id,
                    record.project,
                    record.run_id,
                    record.spec,
                    record.status,
                    int(record.completed),
                    record.expires_at,
                    record.created_at,
                    record.version,
                    record.created_by,
                    record.created_by_token,
                ),
            )
        ]
        if grant_use is not None:
            grant_id, uses, now = grant_use
            statements.append(
                (
                    "UPDATE fl_grants SET uses = uses + 1 WHERE id = ? AND uses = ? "
                    "AND uses < max_uses AND revoked_at IS NULL AND expires_at > ?",
                    (grant_id, uses, now),
                )
            )
        for index, audit in enumerate(audits):
            statements.extend(
                self._audit_statements(audit, notify if index == len(audits) - 1 else None)
            )
        statements.extend(_outbox_statements(outbox))
        statements.extend(_job_statements(jobs))
        return await self._transaction(
            statements, guard_first=True, guarded=2 if grant_use is not None else 1
        )

    async def add_grant(self, grant: GrantRow, audit: AuditRow) -> None:
        await self._transaction(
            [
                (
                    f"INSERT INTO fl_grants ({_GRANT_COLS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        grant.id,
                        grant.project,
                        grant.fn,
                        grant.scope,
                        grant.token_id,
                        grant.person,
                        grant.created_at,
                        grant.expires_at,
                        grant.max_uses,
                        grant.uses,
                        grant.revoked_at,
                        grant.revoked_by,
                        grant.source_call_id,
                        grant.token_name,
                    ),
                ),
                _audit_statement(audit),
            ],
            guard_first=False,
        )

    async def get_grant(self, grant_id: str) -> GrantRow | None:
        rows = await self._fetch(f"SELECT {_GRANT_COLS} FROM fl_grants WHERE id = ?", (grant_id,))
        return _grant_from(rows[0]) if rows else None

    async def list_grants(
        self,
        *,
        project: str | None = None,
        fn: str | None = None,
        person: str | None = None,
        live_at: float | None = None,
        limit: int = 1000,
    ) -> list[GrantRow]:
        """Newest first; ``live_at``: only those neither revoked, expired nor used up then."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("project", project), ("fn", fn), ("person", person)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if live_at is not None:
            where.append("revoked_at IS NULL AND expires_at > ? AND uses < max_uses")
            params.append(live_at)
        params.append(limit)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._fetch_many(
            f"SELECT {_GRANT_COLS} FROM fl_grants {clause}ORDER BY created_at DESC, id LIMIT ?",
            params,
        )
        return [_grant_from(r) for r in rows]

    async def revoke_grant(self, grant_id: str, *, now: float, by: str, audit: AuditRow) -> bool:
        """Revoke (once; False if unknown or already revoked), with its audit entry."""
        return await self._transaction(
            [
                (
                    "UPDATE fl_grants SET revoked_at = ?, revoked_by = ? "
                    "WHERE id = ? AND revoked_at IS NULL",
                    (now, by, grant_id),
                ),
                _audit_statement(audit),
            ],
            guard_first=True,
        )

    async def touch_agents(self, seen: Sequence[tuple[str, str, str]], now: float) -> None:
        """Note that the agent asked about these requests (``(project, kind, call_id)``) by
        ``now``: one transaction, a few statements (the service batches its agents' polls; on
        PostgreSQL each statement is a round trip)."""
        statements: list[Statement] = []
        for project, kind in sorted({(p, k) for p, k, _ in seen}):
            ids = [c for p, k, c in seen if (p, k) == (project, kind)]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                statements.append(
                    (
                        # Pending ones only: presence is shown while a request waits, and a
                        # decided row is not rewritten for nothing.
                        f"UPDATE fl_requests SET agent_seen_at = ? WHERE kind = ? "
                        f"AND project = ? AND completed = 0 AND call_id IN ({marks})",
                        (now, kind, project, *chunk),
                    )
                )
        if statements:
            await self._transaction(statements, guard_first=False)

    async def agent_seen_at(self, kind: str, call_id: str, project: str) -> float | None:
        rows = await self._fetch(
            "SELECT agent_seen_at FROM fl_requests WHERE kind = ? AND call_id = ? AND project = ?",
            (kind, call_id, project),
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def due_expiries(self, now: float, limit: int = 500) -> list[tuple[str, str, str]]:
        """``(kind, call_id, project)`` of pending requests past their deadline."""
        rows = await self._fetch(
            "SELECT kind, call_id, project FROM fl_requests WHERE completed = 0 AND "
            "expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            (now, limit),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def next_due(self) -> float | None:
        """The earliest pending expiry or unclaimed job, as a unix time."""
        rows = await self._fetch(
            "SELECT MIN(expires_at) FROM fl_requests WHERE completed = 0 AND expires_at IS NOT NULL"
        )
        jobs = await self._fetch("SELECT MIN(due_at) FROM fl_jobs WHERE claimed_at IS NULL")
        candidates = [v for v in (rows[0][0], jobs[0][0]) if v is not None]
        return min(candidates) if candidates else None

    async def count_requests(self, *, pending: bool | None = None) -> int:
        if pending is None:
            rows = await self._fetch_many("SELECT COUNT(*) FROM fl_requests")
        else:
            rows = await self._fetch_many(
                "SELECT COUNT(*) FROM fl_requests WHERE completed = ?", (0 if pending else 1,)
            )
        return int(rows[0][0])

    async def count_pending_of(self, project: str, token_id: str) -> int:
        """How many requests (of both kinds) the agent token ``token_id`` has pending in
        ``project`` (its quota; indexed by ``fl_requests_pending_by_token``)."""
        rows = await self._fetch(
            "SELECT COUNT(*) FROM fl_requests WHERE project = ? AND created_by_token = ? "
            "AND completed = 0",
            (project, token_id),
        )
        return int(rows[0][0])

    # -- audit ------------------------------------------------------------------------------

    async def add_audit(self, audit: AuditRow) -> None:
        await self._transaction([_audit_statement(audit)], guard_first=False)

    async def list_audit(
        self, call_id: str | None = None, *, kind: str | None = None, project: str | None = None
    ) -> list[AuditRow]:
        where: list[str] = []
        params: list[Any] = []
        if call_id is not None:
            where.append("call_id = ?")
            params.append(call_id)
        if project is not None:
            where.append("project = ?")
            params.append(project)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._fetch_many(
            "SELECT kind, call_id, at, actor, via, action, details, project FROM fl_audit "
            f"{clause}ORDER BY id",
            params,
        )
        return [
            AuditRow(
                kind=r[0],
                call_id=r[1],
                at=r[2],
                actor=r[3],
                via=r[4],
                action=r[5],
                details=json.loads(r[6]),
                project=r[7],
            )
            for r in rows
        ]

    # -- scheduled jobs (escalation and other timed work; they survive restarts) -------------

    async def add_job(self, topic: str, payload: dict[str, Any], due_at: float) -> None:
        """A job on its own (a retry, a follow-up); a change's own jobs go with the change
        (``insert_request`` / ``update_request``)."""
        await self._transaction(
            _job_statements([NewJob(topic, payload, due_at)]), guard_first=False
        )

    async def due_jobs(self, now: float, *, stale_before: float, limit: int = 100) -> list[JobRow]:
        """Jobs due now that nobody holds (or whose holder died before ``stale_before``)."""
        rows = await self._fetch(
            "SELECT id, topic, payload, due_at FROM fl_jobs WHERE due_at <= ? AND "
            "(claimed_at IS NULL OR claimed_at < ?) ORDER BY due_at LIMIT ?",
            (now, stale_before, limit),
        )
        return [JobRow(id=r[0], topic=r[1], payload=json.loads(r[2]), due_at=r[3]) for r in rows]

    async def claim_job(self, job_id: int, now: float, *, stale_before: float) -> bool:
        return await self._transaction(
            [
                (
                    "UPDATE fl_jobs SET claimed_at = ? WHERE id = ? AND "
                    "(claimed_at IS NULL OR claimed_at < ?)",
                    (now, job_id, stale_before),
                )
            ],
            guard_first=True,
        )

    async def finish_job(self, job_id: int) -> None:
        await self._transaction(
            [("DELETE FROM fl_jobs WHERE id = ?", (job_id,))], guard_first=False
        )

    # -- webhook outbox (see _webhooks: durable, at-least-once delivery) ---------------------

    async def add_outbox(self, rows: Sequence[OutboxRow]) -> None:
        """Enqueue deliveries on their own (idempotent per event and URL)."""
        if rows:
            await self._transaction(_outbox_statements(rows), guard_first=False)

    async def due_outbox(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Pending deliveries due now: never tried, waiting to retry, or claimed by a worker
        whose claim went stale (a claim moves ``next_attempt_at`` to its end)."""
        rows = await self._fetch(
            f"SELECT {_OUTBOX_COLS} FROM fl_outbox WHERE delivered_at IS NULL AND "
            "failed_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            (now, limit),
        )
        return [_outbox_from(r) for r in rows]

    async def next_outbox_due(self) -> float | None:
        rows = await self._fetch(
            "SELECT MIN(next_attempt_at) FROM fl_outbox WHERE delivered_at IS NULL AND "
            "failed_at IS NULL"
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    async def claim_outbox(self, row: OutboxRow, now: float, *, lease_until: float) -> bool:
        """Take ``row`` for one attempt: a compare-and-set on ``attempts``, so of several
        workers (processes) that saw the row due, one wins. Until ``lease_until`` nobody else
        takes it; after that the claim is stale and the row is due again."""
        return await self._transaction(
            [
                (
                    "UPDATE fl_outbox SET attempts = attempts + 1, next_attempt_at = ? "
                    "WHERE id = ? AND attempts = ? AND next_attempt_at <= ? AND "
                    "delivered_at IS NULL AND failed_at IS NULL",
                    (lease_until, row.id, row.attempts, now),
                )
            ],
            guard_first=True,
        )

    async def outbox_delivered(self, row_id: int, now: float) -> None:
        await self._transaction(
            [
                (
                    "UPDATE fl_outbox SET delivered_at = ?, last_error = NULL "
                    "WHERE id = ? AND delivered_at IS NULL",
                    (now, row_id),
                )
            ],
            guard_first=False,
        )

    async def outbox_retry(
        self, row_id: int, attempts: int, *, next_attempt_at: float, error: str
    ) -> bool:
        """After a failed attempt: due again at ``next_attempt_at``. False when the claim was
        lost (another worker took the row over)."""
        return await self._transaction(
            [
                (
                    "UPDATE fl_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND "
                    "attempts = ? AND delivered_at IS NULL AND failed_at IS NULL",
                    (next_attempt_at, error, row_id, attempts),
                )
            ],
            guard_first=True,
        )

    async def outbox_failed(
        self, row_id: int, attempts: int, now: float, error: str, audit: AuditRow
    ) -> bool:
        """Give up on a delivery: the row stays (``failed_at``) and ``audit`` is recorded in
        the same transaction."""
        return await self._transaction(
            [
                (
                    "UPDATE fl_outbox SET failed_at = ?, last_error = ? WHERE id = ? AND "
                    "attempts = ? AND delivered_at IS NULL AND failed_at IS NULL",
                    (now, error, row_id, attempts),
                ),
                _audit_statement(audit),
            ],
            guard_first=True,
        )

    async def list_outbox(
        self, *, call_id: str | None = None, pending: bool | None = None, limit: int = 1000
    ) -> list[OutboxRow]:
        where: list[str] = []
        params: list[Any] = []
        if call_id is not None:
            where.append("call_id = ?")
            params.append(call_id)
        if pending is not None:
            where.append(
                "delivered_at IS NULL AND failed_at IS NULL"
                if pending
                else "(delivered_at IS NOT NULL OR failed_at IS NOT NULL)"
            )
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        params.append(limit)
        rows = await self._fetch_many(
            f"SELECT {_OUTBOX_COLS} FROM fl_outbox {clause}ORDER BY id LIMIT ?", params
        )
        return [_outbox_from(r) for r in rows]

    # -- tokens ---------------------------------------------------------------------------

    async def add_token(
        self,
        project: str,
        name: str,
        token_hash: str,
        now: float,
        *,
        role: str = "agent",
        approver: str | None = None,
        token_id: str,
    ) -> bool:
        """Store a token; False (nothing stored) when a live token of ``project`` already has
        this ``name`` (a unique index, so concurrent creations cannot both win)."""
        return await self._transaction(
            [
                (
                    "INSERT INTO fl_tokens (token_hash, project, name, created_at, role, approver, "
                    "token_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (token_hash, project, name, now, role, approver, token_id),
                )
            ],
            guard_first=True,
        )

    async def live_token_named(self, project: str, name: str) -> bool:
        rows = await self._fetch(
            "SELECT 1 FROM fl_tokens WHERE project = ? AND name = ? AND revoked_at IS NULL",
            (project, name),
        )
        return bool(rows)

    async def find_token(self, token_hash: str) -> TokenRow | None:
        """The live (not revoked) token with this hash. Read on every request, never cached:
        a revocation by any process is effective at once."""
        rows = await self._fetch(
            "SELECT project, name, role, approver, created_at, token_id FROM fl_tokens "
            "WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return TokenRow(
            project=r[0],
            name=r[1],
            role=r[2] or "agent",
            approver=r[3],
            created_at=r[4],
            token_id=r[5] or "",
        )

    async def list_tokens(self) -> list[TokenRow]:
        rows = await self._fetch_many(
            "SELECT project, name, role, approver, created_at, revoked_at, token_id "
            "FROM fl_tokens ORDER BY created_at, name"
        )
        return [
            TokenRow(
                project=r[0],
                name=r[1],
                role=r[2] or "agent",
                approver=r[3],
                created_at=r[4],
                revoked_at=r[5],
                token_id=r[6] or "",
            )
            for r in rows
        ]

    async def revoke_tokens(self, name: str, now: float) -> int:
        """Revoke every live token called ``name``; how many were revoked."""
        before = [t for t in await self.list_tokens() if t.name == name and t.revoked_at is None]
        if before:
            await self._transaction(
                [
                    (
                        "UPDATE fl_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                        (now, name),
                    )
                ],
                guard_first=False,
            )
        return len(before)

    # -- persons (the directory) and their inbox logins -------------------------------------

    async def upsert_person(self, name: str, *, password_hash: str | None, now: float) -> bool:
        """Create the person, or update the password when one is given. True when new."""
        existing = await self.get_user(name)
        if existing is None:
            return await self._transaction(
                [
                    (
                        "INSERT INTO fl_users (username, email, slack_user_id, password_hash, "
                        "created_at, disabled) VALUES (?, NULL, NULL, ?, ?, 0) "
                        "ON CONFLICT (username) DO NOTHING",
                        (name, password_hash or "", now),
                    )
                ],
                guard_first=True,
            )
        if password_hash is not None:
            await self._transaction(
                [
                    (
                        "UPDATE fl_users SET password_hash = ? WHERE username = ?",
                        (password_hash, name),
                    ),
                    ("DELETE FROM fl_sessions WHERE username = ?", (name,)),
                ],
                guard_first=False,
            )
        return False

    async def set_person_disabled(self, name: str, disabled: bool) -> bool:
        statements: list[Statement] = [
            ("UPDATE fl_users SET disabled = ? WHERE username = ?", (int(disabled), name))
        ]
        if disabled:
            statements.append(("DELETE FROM fl_sessions WHERE username = ?", (name,)))
        return await self._transaction(statements, guard_first=True)

    async def link_identity(self, name: str, kind: str, value: str) -> None:
        """Link an identity to a person; an identity belongs to one person only."""
        owner = await self.find_identity(kind, value)
        if owner is not None and owner != name:
            raise IdentityTakenError(f"{kind} {value!r} already belongs to {owner!r}")
        if owner is None:
            await self._transaction(
                [
                    (
                        "INSERT INTO fl_identities (kind, value, username) VALUES (?, ?, ?) "
                        "ON CONFLICT (kind, value) DO NOTHING",
                        (kind, value, name),
                    )
                ],
                guard_first=False,
            )

    async def add_membership(self, name: str, project: str) -> None:
        await self._transaction(
            [
                (
                    "INSERT INTO fl_memberships (username, project) VALUES (?, ?) "
                    "ON CONFLICT (username, project) DO NOTHING",
                    (name, project),
                )
            ],
            guard_first=False,
        )

    async def find_identity(self, kind: str, value: str) -> str | None:
        rows = await self._fetch(
            "SELECT username FROM fl_identities WHERE kind = ? AND value = ?", (kind, value)
        )
        return str(rows[0][0]) if rows else None

    async def get_person(self, name: str) -> PersonRow | None:
        # One statement (it is on every decision's path): the person's row, then one row per
        # linked identity and per project.
        rows = await self._fetch(
            "SELECT 'u', password_hash, disabled FROM fl_users WHERE username = ? "
            "UNION ALL SELECT 'i:' || kind, value, 0 FROM fl_identities WHERE username = ? "
            "UNION ALL SELECT 'p', project, 0 FROM fl_memberships WHERE username = ?",
            (name, name, name),
        )
        head = [r for r in rows if r[0] == "u"]
        if not head:
            return None
        return PersonRow(
            name=name,
            password_hash=head[0][1] or "",
            disabled=bool(head[0][2]),
            identities=tuple(
                sorted((str(r[0])[2:], str(r[1])) for r in rows if r[0] != "u" and r[0] != "p")
            ),
            projects=tuple(sorted(str(r[1]) for r in rows if r[0] == "p")),
        )

    async def list_person_names(self) -> list[str]:
        rows = await self._fetch_many("SELECT username FROM fl_users ORDER BY username")
        return [str(r[0]) for r in rows]

    async def get_user(self, username: str) -> UserRow | None:
        rows = await self._fetch(
            "SELECT username, email, slack_user_id, password_hash, disabled FROM fl_users "
            "WHERE username = ?",
            (username,),
        )
        if not rows:
            return None
        r = rows[0]
        return UserRow(r[0], r[1], r[2], r[3] or "", bool(r[4]))

    # -- inbox sessions (server-side, so logout and revocation are effective at once) ---------

    async def add_session(
        self, session_hash: str, username: str, now: float, expires_at: float
    ) -> None:
        await self._transaction(
            [
                (
                    "INSERT INTO fl_sessions (session_hash, username, created_at, expires_at) "
                    "VALUES (?, ?, ?, ?)",
                    (session_hash, username, now, expires_at),
                )
            ],
            guard_first=False,
        )

    async def get_session(self, session_hash: str) -> SessionRow | None:
        rows = await self._fetch(
            "SELECT username, created_at, expires_at FROM fl_sessions WHERE session_hash = ?",
            (session_hash,),
        )
        return SessionRow(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def delete_sessions(
        self, *, username: str | None = None, session_hash: str | None = None
    ) -> None:
        if username is not None:
            stmt: Statement = ("DELETE FROM fl_sessions WHERE username = ?", (username,))
        elif session_hash is not None:
            stmt = ("DELETE FROM fl_sessions WHERE session_hash = ?", (session_hash,))
        else:
            raise ValueError("give username or session_hash")
        await self._transaction([stmt], guard_first=False)

    # -- a small durable key-value table (channels' records: email Message-IDs, used links) ---

    async def remember(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key`` unless the key exists (first write wins)."""
        await self._transaction(
            [
                (
                    "INSERT INTO fl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, json.dumps(value, sort_keys=True)),
                )
            ],
            guard_first=False,
        )

    async def recall(self, key: str) -> dict[str, Any] | None:
        rows = await self._fetch("SELECT value FROM fl_meta WHERE key = ?", (key,))
        if not rows:
            return None
        value = json.loads(rows[0][0])
        return value if isinstance(value, dict) else {"value": value}

    async def claim_once(self, key: str, value: dict[str, Any], audit: AuditRow) -> bool:
        """Store ``value`` under ``key`` together with ``audit``, atomically; False (and no
        audit entry) when the key was already taken: a single-use claim."""
        return await self._transaction(
            [
                (
                    "INSERT INTO fl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, json.dumps(value, sort_keys=True)),
                ),
                _audit_statement(audit),
            ],
            guard_first=True,
        )


class IdentityTakenError(ValueError):
    """The identity is already linked to another person."""


def _audit_statement(audit: AuditRow) -> Statement:
    return (
        "INSERT INTO fl_audit (kind, call_id, at, actor, via, action, details, project) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            audit.kind,
            audit.call_id,
            audit.at,
            audit.actor,
            audit.via,
            audit.action,
            json.dumps(audit.details, sort_keys=True, default=str),
            audit.project,
        ),
    )


def schema(dialect: str) -> list[str]:
    """DDL for ``sqlite`` or ``postgresql``; idempotent."""
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    serial = (
        "BIGSERIAL PRIMARY KEY" if dialect == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    return [
        f"""CREATE TABLE IF NOT EXISTS fl_requests (
            kind TEXT NOT NULL, call_id TEXT NOT NULL, project TEXT NOT NULL, run_id TEXT NOT NULL,
            spec TEXT NOT NULL, status TEXT NOT NULL, completed INTEGER NOT NULL,
            expires_at {real}, created_at {real} NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (kind, call_id, project))""",
        "CREATE INDEX IF NOT EXISTS fl_requests_pending ON fl_requests (completed, expires_at)",
        # No index but the primary key may match the equality columns of a lookup by call id
        # (kind, call_id, project). With one that did (first (kind, project, created_at), then
        # (project, kind, created_at) once lookups named the project), PostgreSQL's generic
        # plan for the prepared lookup (psycopg prepares a statement on its 5th use) picked it
        # while the table had no statistics yet, and kept scanning every row of the project
        # and kind for the connection's life. So listings have their own expression (which
        # no lookup by call id names): ``kind:project``, unambiguous (a kind has no ':').
        "CREATE INDEX IF NOT EXISTS fl_requests_listing ON fl_requests "
        "((kind || ':' || project), created_at)",
        "DROP INDEX IF EXISTS fl_requests_project",
        "DROP INDEX IF EXISTS fl_requests_by_project",
        f"""CREATE TABLE IF NOT EXISTS fl_audit (
            id {serial}, kind TEXT NOT NULL, call_id TEXT NOT NULL, at {real} NOT NULL,
            actor TEXT NOT NULL, via TEXT NOT NULL, action TEXT NOT NULL, details TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS fl_audit_call ON fl_audit (call_id)",
        f"""CREATE TABLE IF NOT EXISTS fl_jobs (
            id {serial}, topic TEXT NOT NULL, payload TEXT NOT NULL, due_at {real} NOT NULL,
            claimed_at {real})""",
        "CREATE INDEX IF NOT EXISTS fl_jobs_due ON fl_jobs (due_at)",
        f"""CREATE TABLE IF NOT EXISTS fl_tokens (
            token_hash TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL,
            created_at {real} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS fl_users (
            username TEXT PRIMARY KEY, email TEXT, slack_user_id TEXT, password_hash TEXT NOT NULL,
            created_at {real} NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS fl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS fl_identities (
            kind TEXT NOT NULL, value TEXT NOT NULL, username TEXT NOT NULL,
            PRIMARY KEY (kind, value))""",
        "CREATE INDEX IF NOT EXISTS fl_identities_user ON fl_identities (username)",
        """CREATE TABLE IF NOT EXISTS fl_memberships (
            username TEXT NOT NULL, project TEXT NOT NULL, PRIMARY KEY (username, project))""",
        f"""CREATE TABLE IF NOT EXISTS fl_sessions (
            session_hash TEXT PRIMARY KEY, username TEXT NOT NULL, created_at {real} NOT NULL,
            expires_at {real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS fl_sessions_user ON fl_sessions (username)",
        # Webhook outbox: one row per (event, URL), written with the change it announces.
        f"""CREATE TABLE IF NOT EXISTS fl_outbox (
            id {serial}, event_id TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,
            call_id TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,
            created_at {real} NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {real} NOT NULL, delivered_at {real}, failed_at {real},
            last_error TEXT, UNIQUE (event_id, url))""",
        "CREATE INDEX IF NOT EXISTS fl_outbox_due ON fl_outbox (next_attempt_at) "
        "WHERE delivered_at IS NULL AND failed_at IS NULL",
        "CREATE INDEX IF NOT EXISTS fl_outbox_call ON fl_outbox (call_id)",
        # Grants of future calls by persons (see _grants); uses is a compare-and-set counter.
        f"""CREATE TABLE IF NOT EXISTS fl_grants (
            id TEXT PRIMARY KEY, project TEXT NOT NULL, fn TEXT NOT NULL, scope TEXT NOT NULL,
            token_id TEXT, person TEXT NOT NULL, created_at {real} NOT NULL,
            expires_at {real} NOT NULL, max_uses INTEGER NOT NULL,
            uses INTEGER NOT NULL DEFAULT 0, revoked_at {real}, revoked_by TEXT,
            source_call_id TEXT NOT NULL DEFAULT '', token_name TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX IF NOT EXISTS fl_grants_fn ON fl_grants (project, fn)",
    ]


def migrations(dialect: str) -> list[tuple[str, str, str]]:
    """Columns added since the first schema: ``(table, column, definition)``, added to an
    existing database when missing."""
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        ("fl_requests", "created_by", "TEXT NOT NULL DEFAULT ''"),
        ("fl_requests", "created_by_token", "TEXT NOT NULL DEFAULT ''"),
        ("fl_requests", "agent_seen_at", real),
        ("fl_tokens", "role", "TEXT NOT NULL DEFAULT 'agent'"),
        ("fl_tokens", "approver", "TEXT"),
        ("fl_tokens", "revoked_at", real),
        ("fl_tokens", "token_id", "TEXT"),
        ("fl_users", "disabled", "INTEGER NOT NULL DEFAULT 0"),
        ("fl_audit", "project", "TEXT"),
    ]


# Indexes on columns that ``migrations`` may have just added (created after them).
LATE_INDEXES = [
    # Partial: only pending rows, so counting a token's pending requests (its quota, checked
    # on every create) never walks the decided history.
    "DROP INDEX IF EXISTS fl_requests_pending_by_creator",  # by token name: before 0.4.1
    "CREATE INDEX IF NOT EXISTS fl_requests_pending_by_token ON fl_requests "
    "(project, created_by_token) WHERE completed = 0",
]

# Identities and memberships of persons created before the directory existed.
BACKFILL = [
    "INSERT INTO fl_identities (kind, value, username) SELECT 'email', LOWER(email), username "
    "FROM fl_users WHERE email IS NOT NULL AND email <> '' ON CONFLICT (kind, value) DO NOTHING",
    "INSERT INTO fl_identities (kind, value, username) SELECT 'slack', slack_user_id, username "
    "FROM fl_users WHERE slack_user_id IS NOT NULL AND slack_user_id <> '' "
    "ON CONFLICT (kind, value) DO NOTHING",
    "INSERT INTO fl_memberships (username, project) SELECT u.username, 'default' FROM fl_users u "
    "WHERE NOT EXISTS (SELECT 1 FROM fl_memberships m WHERE m.username = u.username) "
    "ON CONFLICT (username, project) DO NOTHING",
    # The project of audit entries written before it was recorded: call ids were then unique,
    # so the request tells it (an entry whose request is not unique stays unattributed).
    "UPDATE fl_audit SET project = (SELECT MIN(r.project) FROM fl_requests r WHERE "
    "r.kind = fl_audit.kind AND r.call_id = fl_audit.call_id) WHERE project IS NULL AND "
    "(SELECT COUNT(*) FROM fl_requests r WHERE r.kind = fl_audit.kind AND "
    "r.call_id = fl_audit.call_id) = 1",
    # Token ids (immutable; requests are owned by them, not by names) for tokens made before
    # ids existed: derived from the stored hash, so unique, and nothing secret.
    "UPDATE fl_tokens SET token_id = 'h' || SUBSTR(token_hash, 1, 32) WHERE token_id IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS fl_tokens_id ON fl_tokens (token_id)",
    # One live token per name and project. Live duplicates made before this rule keep working
    # under a distinct name (the oldest keeps the name; later ones get '#' and their id), so
    # the unique index can be built and no name is ever shared by two live tokens.
    "UPDATE fl_tokens SET name = name || '#' || token_id WHERE revoked_at IS NULL AND EXISTS "
    "(SELECT 1 FROM fl_tokens o WHERE o.project = fl_tokens.project AND o.name = fl_tokens.name "
    "AND o.revoked_at IS NULL AND (o.created_at < fl_tokens.created_at OR "
    "(o.created_at = fl_tokens.created_at AND o.token_hash < fl_tokens.token_hash)))",
    "CREATE UNIQUE INDEX IF NOT EXISTS fl_tokens_live_name ON fl_tokens (project, name) "
    "WHERE revoked_at IS NULL",
]
