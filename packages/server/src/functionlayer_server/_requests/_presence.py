"""Whether the agent still waits for a request, the same answer from every server process.

Kept on the request's row (``_store._presence``) and written in batches, never one transaction
per poll: its polls (at most one write per request every ``AGENT_SEEN_WRITE_SECONDS``), a
heartbeat of the long-polls this process holds (one batch every ``AGENT_HEARTBEAT_SECONDS``
for all of them), the end of a held long-poll, and its drop by the client's connection closing
(``left``). A hold whose heartbeat stopped (its process died or lost its database) reads as
gone after ``AGENT_HELD_FRESH_SECONDS``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from functionlayer_server._scheduler import Clock
from functionlayer_server._store import AgentMarks, AgentTrace, RequestRecord, Store

from ._waiters import Key, Waiters

__all__ = [
    "AGENT_HEARTBEAT_SECONDS",
    "AGENT_HELD_FRESH_SECONDS",
    "AGENT_SEEN_FLUSH_SECONDS",
    "AGENT_SEEN_WRITE_SECONDS",
    "Presence",
    "judge",
]

log = logging.getLogger("functionlayer_server.service")

AGENT_SEEN_WRITE_SECONDS = 10.0  # how often an agent's polls of one request are noted, at most
AGENT_SEEN_FLUSH_SECONDS = 1.0  # noted polls are written down together, this often
AGENT_HEARTBEAT_SECONDS = 3.0  # the long-polls a process holds are noted together, this often
AGENT_HELD_FRESH_SECONDS = 8.0  # a held long-poll not noted for this long: its process is gone

_MAX_NOTED = 50_000  # bound on each in-memory map (cleared past it)


def judge(trace: AgentTrace, now: float, recent: float) -> tuple[str, float | None]:
    """The presence the stored ``trace`` tells (see ``ApprovalService.agent_presence``);
    ``recent``: how long after its last poll an agent that holds no long-poll still counts
    as waiting (it may be between two polls)."""
    seen, held, left = trace
    if left is not None and (seen is None or seen <= left):
        return "left", left  # nothing heard of it since its connection closed
    if held is not None and (seen is None or held >= seen):
        # Last heard through a held long-poll: its process notes it while it lasts.
        return ("waiting", held) if now - held <= AGENT_HELD_FRESH_SECONDS else ("gone", held)
    if seen is None:
        return "unknown", None
    return ("waiting", seen) if now - seen <= recent else ("gone", seen)


def _bounded(noted: dict[Key, float]) -> dict[Key, float]:
    if len(noted) > _MAX_NOTED:
        noted.clear()
    return noted


class Presence:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        waiters: Waiters,
        spawn: Callable[[Awaitable[Any]], None],
        long_poll_max_seconds: float,
    ) -> None:
        self.store, self.clock, self.waiters = store, clock, waiters
        self._spawn = spawn
        # How long after its last poll an agent that holds no long-poll still counts as
        # waiting (between two polls).
        self._recent = long_poll_max_seconds + AGENT_SEEN_WRITE_SECONDS + 30
        self._seen: dict[Key, float] = {}  # last written poll, per request (the write limit)
        self._left: dict[Key, float] = {}  # long-polls dropped by the client, until it asks
        self._holds: dict[Key, int] = {}  # agents' long-polls open here (the API holds them)
        self._held: set[Key] = set()  # of those, the ones found in the agent's project
        # Not yet written down: polls, holds ended with an answer, drops.
        self._unwritten: dict[Key, float] = {}
        self._released: dict[Key, float] = {}
        self._unwritten_left: dict[Key, float] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._beat: asyncio.TimerHandle | None = None

    # -- what this process hears ------------------------------------------------------------

    def seen(self, record: RequestRecord) -> None:
        """Note the agent's poll of ``record`` (found in its project). Written down in batches
        (one transaction a second at most, not one per poll: it is on the long-poll's path)."""
        now = self.clock.now()
        key = (record.project, record.kind, record.call_id)
        if key in self._holds and key not in self._held:
            self._held.add(key)
            self._released.pop(key, None)
            self._start_heartbeat()
        came_back = self._left.pop(key, None) is not None
        self._unwritten_left.pop(key, None)
        if came_back or now - self._seen.get(key, 0.0) >= AGENT_SEEN_WRITE_SECONDS:
            _bounded(self._seen)[key] = now
            self._unwritten[key] = now
            self._schedule()

    @contextlib.contextmanager
    def holding(self, key: Key) -> Iterator[None]:
        """An agent's long-poll on ``key`` is open in this process for as long as this lasts:
        the heartbeat notes it once its poll found the request (``seen``); its end with an
        answer is noted too (the agent asked then), its drop by the client is ``left``."""
        self._holds[key] = self._holds.get(key, 0) + 1
        try:
            yield
        finally:
            count = self._holds.pop(key) - 1
            if count:
                self._holds[key] = count
            elif key in self._held:
                self._held.discard(key)
                self._released[key] = self.clock.now()
                self._schedule()

    def left(self, key: Key) -> None:
        """The agent's long-poll on this request ended by its connection closing (its process
        ended or it stopped waiting): every process's inbox says so within a second or two,
        until it asks again."""
        now = self.clock.now()
        _bounded(self._left)[key] = now
        _bounded(self._unwritten_left)[key] = now
        self._unwritten.pop(key, None)  # older than the drop
        self._released.pop(key, None)
        if self._holds.get(key, 0) <= 1:
            self._held.discard(key)
        self._schedule()

    # -- writing it down --------------------------------------------------------------------

    def _later(self, delay: float, then: Callable[[], None]) -> asyncio.TimerHandle | None:
        """``then`` in ``delay`` seconds (nothing new is planned while the service stops)."""
        if self.waiters.stopping:
            return None
        return asyncio.get_running_loop().call_later(delay, then)

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = self._later(AGENT_SEEN_FLUSH_SECONDS, self._spawn_write)

    def _spawn_write(self) -> None:
        self._flush = None
        self._spawn(self.write())

    def _start_heartbeat(self) -> None:
        if self._beat is None:
            self._beat = self._later(AGENT_HEARTBEAT_SECONDS, self._heartbeat)

    def _heartbeat(self) -> None:
        self._beat = None
        if self._held:
            self._spawn(self.write(beat=True))
            self._start_heartbeat()

    async def write(self, *, beat: bool = False) -> None:
        """Write down what is noted (with ``beat``, the held long-polls too) in one batch."""
        seen, self._unwritten = self._unwritten, {}
        released, self._released = self._released, {}
        left, self._unwritten_left = self._unwritten_left, {}
        held = sorted(self._held) if beat else []
        times = [*seen.values(), *released.values(), *left.values()]
        if held:
            times.append(self.clock.now())
        if not times:
            return
        # One time for the batch (the latest): "last asked" is kept to the second.
        marks = AgentMarks(max(times), list(seen), held, list(released), list(left))
        try:
            await self.store.mark_agents(marks)
        except Exception:
            log.warning("could not note the presence of %d agents", len(times), exc_info=True)

    async def stop(self) -> None:
        """Write down what is left: the long-polls still held end with the service (their
        agents ask again, maybe elsewhere). It logs its own failure."""
        for timer in (self._flush, self._beat):
            if timer is not None:
                timer.cancel()
        self._flush = self._beat = None
        now = self.clock.now()
        self._released.update(dict.fromkeys(self._held, now))
        self._held.clear()
        await self.write()

    # -- the answer -------------------------------------------------------------------------

    async def presence(self, key: Key) -> tuple[str, float | None]:
        """See ``ApprovalService.agent_presence``: a long-poll held here answers at once;
        otherwise the stored trace, with what this process has not written down yet."""
        if self.waiters.holding(key):
            return "waiting", None
        project, kind, call_id = key
        seen, held, left = await self.store.agent_trace(kind, call_id, project)
        seen = _latest(seen, self._unwritten.get(key), self._released.get(key))
        left = _latest(left, self._unwritten_left.get(key))
        return judge(AgentTrace(seen, held, left), self.clock.now(), self._recent)


def _latest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None
