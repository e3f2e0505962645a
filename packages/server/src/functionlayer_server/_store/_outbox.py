"""The webhook outbox (see ``functionlayer_server._webhooks``: durable, at-least-once delivery)."""

from __future__ import annotations

from collections.abc import Sequence

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import AuditRow, OutboxRow
from functionlayer_server._store._sql import (
    OUTBOX_COLUMNS,
    audit_statement,
    outbox_statements,
    where_clause,
)

__all__ = ["OutboxRepository"]


class OutboxRepository(Engine):
    """Webhook deliveries: enqueued, claimed by one worker, delivered, retried or failed."""

    async def add_outbox(self, rows: Sequence[OutboxRow]) -> None:
        """Enqueue deliveries on their own (idempotent per event and URL)."""
        if rows:
            await self._transaction(outbox_statements(rows), guard_first=False)

    async def due_outbox(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Pending deliveries due now: never tried, waiting to retry, or claimed by a worker
        whose claim went stale (a claim moves ``next_attempt_at`` to its end)."""
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM fl_outbox WHERE delivered_at IS NULL AND "
            "failed_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            (now, limit),
        )
        return [OutboxRow.from_row(r) for r in rows]

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
        return await self._execute(
            "UPDATE fl_outbox SET attempts = attempts + 1, next_attempt_at = ? "
            "WHERE id = ? AND attempts = ? AND next_attempt_at <= ? AND "
            "delivered_at IS NULL AND failed_at IS NULL",
            (lease_until, row.id, row.attempts, now),
            guard=True,
        )

    async def outbox_delivered(self, row_id: int, now: float) -> None:
        await self._execute(
            "UPDATE fl_outbox SET delivered_at = ?, last_error = NULL "
            "WHERE id = ? AND delivered_at IS NULL",
            (now, row_id),
        )

    async def outbox_retry(
        self, row_id: int, attempts: int, *, next_attempt_at: float, error: str
    ) -> bool:
        """After a failed attempt: due again at ``next_attempt_at``. False when the claim was
        lost (another worker took the row over)."""
        return await self._execute(
            "UPDATE fl_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND "
            "attempts = ? AND delivered_at IS NULL AND failed_at IS NULL",
            (next_attempt_at, error, row_id, attempts),
            guard=True,
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
                audit_statement(audit),
            ],
            guard_first=True,
        )

    async def list_outbox(
        self, *, call_id: str | None = None, pending: bool | None = None, limit: int = 1000
    ) -> list[OutboxRow]:
        done = "(delivered_at IS NOT NULL OR failed_at IS NOT NULL)"
        state = "delivered_at IS NULL AND failed_at IS NULL" if pending else done
        clause, params = where_clause(
            {"call_id": call_id}, (state, ()) if pending is not None else None
        )
        params.append(limit)
        rows = await self._fetch_many(
            f"SELECT {OUTBOX_COLUMNS} FROM fl_outbox {clause}ORDER BY id LIMIT ?", params
        )
        return [OutboxRow.from_row(r) for r in rows]
