"""Whether the agent still waits for a request: its polls noted in batches, its long-poll
dropped by the client (``left``), and the answer the inbox shows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from functionlayer_server._scheduler import Clock
from functionlayer_server._store import RequestRecord, Store

from ._waiters import Key, Waiters

__all__ = ["AGENT_SEEN_FLUSH_SECONDS", "AGENT_SEEN_WRITE_SECONDS", "Presence"]

log = logging.getLogger("functionlayer_server.service")

AGENT_SEEN_WRITE_SECONDS = 10.0  # how often an agent's polls of one request are noted, at most
AGENT_SEEN_FLUSH_SECONDS = 1.0  # noted polls are written down together, this often


class Presence:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        waiters: Waiters,
        spawn: Callable[[Awaitable[Any]], None],
        long_poll_max_seconds: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.waiters = waiters
        self._spawn = spawn
        self._long_poll_max_seconds = long_poll_max_seconds
        self._seen: dict[Key, float] = {}
        self._unwritten: dict[Key, float] = {}
        self._flush: asyncio.TimerHandle | None = None
        # When an agent's long-poll on a request ended by its connection closing (agent_left).
        self._left: dict[Key, float] = {}

    def seen(self, record: RequestRecord) -> None:
        """Note the agent's poll of ``record`` (found in its project). Written down in batches
        (one transaction a second at most, not one per poll: it is on the long-poll's path);
        ``presence`` reads both."""
        now = self.clock.now()
        key = (record.project, record.kind, record.call_id)
        self._left.pop(key, None)
        if now - self._seen.get(key, 0.0) >= AGENT_SEEN_WRITE_SECONDS:
            self._seen[key] = now
            if len(self._seen) > 50_000:
                self._seen.clear()
            self._unwritten[key] = now
            if self._flush is None and not self.waiters.stopping:
                self._flush = asyncio.get_running_loop().call_later(
                    AGENT_SEEN_FLUSH_SECONDS, self._spawn_write
                )

    def _spawn_write(self) -> None:
        self._flush = None
        self._spawn(self.write())

    async def write(self) -> None:
        batch, self._unwritten = self._unwritten, {}
        if not batch:
            return
        try:
            # One time for the batch (the latest poll): "last asked" is kept to the second.
            await self.store.touch_agents(list(batch), max(batch.values()))
        except Exception:
            log.warning("could not note %d agent polls", len(batch), exc_info=True)

    async def stop(self) -> None:
        """Write down what is left (it logs its own failure)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        await self.write()

    def left(self, key: Key) -> None:
        """The agent's long-poll on this request ended by its connection closing (its process
        ended or it stopped waiting): the inbox says so at once, until it asks again."""
        if len(self._left) > 50_000:
            self._left.clear()
        self._left[key] = self.clock.now()

    async def presence(self, key: Key) -> tuple[str, float | None]:
        """See ``ApprovalService.agent_presence``."""
        if self.waiters.holding(key):
            return "waiting", None
        project, kind, call_id = key
        unwritten = self._unwritten.get(key)
        seen = (
            unwritten
            if unwritten is not None
            else await self.store.agent_seen_at(kind, call_id, project)
        )
        left = self._left.get(key)
        if left is not None and (seen is None or seen <= left):
            return "left", left  # another process may have heard it since: only if noted later
        if seen is None:
            return "unknown", None
        recent = self._long_poll_max_seconds + AGENT_SEEN_WRITE_SECONDS + 30
        return ("waiting", seen) if self.clock.now() - seen <= recent else ("gone", seen)
