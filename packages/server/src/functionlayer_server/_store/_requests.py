"""Requests: stored as JSON text (spec and status) with the columns the server filters on
(project, run_id, completed, expires_at, group_id) kept alongside, and a ``version`` that makes
every status change a compare-and-set: two concurrent answers cannot both win, across threads
or server processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import AuditRow, NewJob, OutboxRow, RequestRecord
from functionlayer_server._store._sql import (
    REQUEST_COLUMNS,
    Statement,
    insert_request_statement,
    job_statements,
    outbox_statements,
)

__all__ = ["RequestRepository"]


class RequestRepository(Engine):
    """Function calls and human contacts: create, read, list, change by compare-and-set."""

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
            insert_request_statement(record),
            *self._audit_statements(audit, notify),
            *outbox_statements(outbox),
            *job_statements(jobs),
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
            f"SELECT {REQUEST_COLUMNS} FROM fl_requests "
            "WHERE kind = ? AND call_id = ? AND project = ?",
            (kind, call_id, project),
        )
        return RequestRecord.from_row(rows[0]) if rows else None

    async def find_requests(self, kind: str, call_id: str) -> list[RequestRecord]:
        """Every project's request with this call id (for paths that know no project yet:
        the caller must tell them apart, or refuse)."""
        rows = await self._fetch(
            f"SELECT {REQUEST_COLUMNS} FROM fl_requests WHERE kind = ? AND call_id = ? "
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
            f"SELECT {REQUEST_COLUMNS} FROM fl_requests WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, call_id LIMIT ?",
            params,
        )
        return [RequestRecord.from_row(r) for r in rows]

    async def list_group(
        self, kind: str, *, project: str, token_id: str, group_id: str, limit: int = 50
    ) -> list[RequestRecord]:
        """The requests of one review group, oldest first: the same project, the same creating
        token (``created_by_token``) and the same group id. Read through the partial index
        ``fl_requests_group``: groups of any age, in time proportional to the group's size."""
        rows = await self._fetch(
            f"SELECT {REQUEST_COLUMNS} FROM fl_requests WHERE project = ? AND "
            "created_by_token = ? AND group_id = ? AND group_id IS NOT NULL AND kind = ? "
            "ORDER BY created_at, call_id LIMIT ?",
            (project, token_id, group_id, kind, limit),
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
            *outbox_statements(outbox),
            *job_statements(jobs),
        ]
        return await self._transaction(statements, guard_first=True)

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
        statements: list[Statement] = [insert_request_statement(record)]
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
        statements.extend(outbox_statements(outbox))
        statements.extend(job_statements(jobs))
        return await self._transaction(
            statements, guard_first=True, guarded=2 if grant_use is not None else 1
        )

    async def due_expiries(self, now: float, limit: int = 500) -> list[tuple[str, str, str]]:
        """``(kind, call_id, project)`` of pending requests past their deadline."""
        rows = await self._fetch(
            "SELECT kind, call_id, project FROM fl_requests WHERE completed = 0 AND "
            "expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            (now, limit),
        )
        return [(r[0], r[1], r[2]) for r in rows]

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
