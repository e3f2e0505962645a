"""Timed work: request expiry and scheduled jobs (escalation and the like), driven by an
injectable clock so tests can move time by hand. Jobs live in the database, so they survive a
restart; several server processes may run schedulers on one database (claims are atomic)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from functionlayer_server._store import Store

__all__ = ["Clock", "JobHandler", "ManualClock", "Scheduler", "SystemClock", "worker_tick"]

log = logging.getLogger("functionlayer_server.scheduler")

JobHandler = Callable[[dict[str, Any]], Awaitable[None]]

# A claimed job whose process died is taken over after this long.
_STALE_CLAIM_SECONDS = 300.0


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = now


Expire = Callable[[str, str, str], Awaitable[bool]]
"""``expire(kind, call_id, project)``: fail a due request closed; True if it changed."""


async def worker_tick(
    work: Callable[[], Awaitable[object]],
    next_due: Callable[[], Awaitable[float | None]],
    logger: logging.Logger,
    what: str,
) -> float | None:
    """One pass of a background worker's loop: do the due work, then say when more is due.
    A failure is logged and gives None (the loop then waits its full interval); cancelling
    the worker is never caught."""
    try:
        await work()
        return await next_due()
    except Exception:
        logger.exception("%s tick failed", what)
        return None


class Scheduler:
    """Runs due expiries and stored jobs. It knows a store, a clock and a way to expire a
    request: nothing of the service (no import cycle)."""

    def __init__(
        self, store: Store, clock: Clock, expire: Expire, *, max_sleep: float = 1.0
    ) -> None:
        self._store = store
        self._expire = expire
        self.clock = clock
        self._max_sleep = max_sleep
        self._handlers: dict[str, JobHandler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def register(self, topic: str, handler: JobHandler) -> None:
        """Run ``handler(payload)`` for due jobs of ``topic`` (see ``ApprovalService.schedule``)."""
        self._handlers[topic] = handler

    def wake(self) -> None:
        """Re-check due work now (new deadlines were added)."""
        self._wake.set()

    async def run_due(self) -> int:
        """Expire due requests and run due jobs once; returns how many were handled."""
        async with self._lock:
            store = self._store
            now = self.clock.now()
            handled = 0
            for kind, call_id, project in await store.due_expiries(now):
                if await self._expire(kind, call_id, project):
                    handled += 1
            stale = now - _STALE_CLAIM_SECONDS
            for job in await store.due_jobs(now, stale_before=stale):
                handler = self._handlers.get(job.topic)
                if handler is None:
                    continue  # kept for a process that knows this topic
                if not await store.claim_job(job.id, now, stale_before=stale):
                    continue
                try:
                    await handler(job.payload)
                except Exception:
                    log.exception("scheduled job %s (%s) failed", job.id, job.topic)
                await store.finish_job(job.id)
                handled += 1
            return handled

    async def _loop(self) -> None:
        while True:
            due = await worker_tick(self.run_due, self._store.next_due, log, "scheduler")
            now = self.clock.now()
            # Something still due right after a run has no handler here: wait the full interval.
            sleep = (
                self._max_sleep if due is None or due <= now else min(self._max_sleep, due - now)
            )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(sleep, 0.001))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="fl-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
