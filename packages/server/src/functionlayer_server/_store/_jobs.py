"""Scheduled jobs (channel deliveries, escalation and other timed work): they survive restarts,
and a job is claimed by one process at a time."""

from __future__ import annotations

import json
from typing import Any

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._rows import JobRow, NewJob
from functionlayer_server._store._sql import job_statements

__all__ = ["JobRepository"]


class JobRepository(Engine):
    """Jobs: added, found due, claimed, finished; and when the scheduler must wake next."""

    async def next_due(self) -> float | None:
        """The earliest pending expiry or unclaimed job, as a unix time."""
        rows = await self._fetch(
            "SELECT MIN(expires_at) FROM fl_requests WHERE completed = 0 AND expires_at IS NOT NULL"
        )
        jobs = await self._fetch("SELECT MIN(due_at) FROM fl_jobs WHERE claimed_at IS NULL")
        candidates = [v for v in (rows[0][0], jobs[0][0]) if v is not None]
        return min(candidates) if candidates else None

    async def add_job(self, topic: str, payload: dict[str, Any], due_at: float) -> None:
        """A job on its own (a retry, a follow-up); a change's own jobs go with the change
        (``insert_request`` / ``update_request``)."""
        await self._transaction(job_statements([NewJob(topic, payload, due_at)]), guard_first=False)

    async def due_jobs(self, now: float, *, stale_before: float, limit: int = 100) -> list[JobRow]:
        """Jobs due now that nobody holds (or whose holder died before ``stale_before``)."""
        rows = await self._fetch(
            "SELECT id, topic, payload, due_at FROM fl_jobs WHERE due_at <= ? AND "
            "(claimed_at IS NULL OR claimed_at < ?) ORDER BY due_at LIMIT ?",
            (now, stale_before, limit),
        )
        return [JobRow(id=r[0], topic=r[1], payload=json.loads(r[2]), due_at=r[3]) for r in rows]

    async def claim_job(self, job_id: int, now: float, *, stale_before: float) -> bool:
        return await self._execute(
            "UPDATE fl_jobs SET claimed_at = ? WHERE id = ? AND "
            "(claimed_at IS NULL OR claimed_at < ?)",
            (now, job_id, stale_before),
            guard=True,
        )

    async def finish_job(self, job_id: int) -> None:
        await self._transaction(
            [("DELETE FROM fl_jobs WHERE id = ?", (job_id,))], guard_first=False
        )
