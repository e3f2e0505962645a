"""Wake-ups: the futures of long-polls waiting on one request, the global change counter the
inbox and the CLI wait on, and PostgreSQL NOTIFY (changes made by other server processes).
Nothing polls: a decision releases its long-polls here, and elsewhere through NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import json

from functionlayer_server._store import RequestRecord

__all__ = ["Key", "Waiters", "notice"]

Key = tuple[str, str, str]
"""(project, kind, call_id): call ids are unique per project only."""


def notice(event: str, record: RequestRecord) -> str:
    """The NOTIFY payload telling other processes about a change to ``record``."""
    return json.dumps([event, record.kind, record.project, record.call_id])


class Waiters:
    def __init__(self) -> None:
        self._futures: dict[Key, list[asyncio.Future[RequestRecord | None]]] = {}
        self._changes = 0
        self._change_event = asyncio.Event()
        self.stopping = False
        """Set while the service stops: long-polls answer with what they have."""

    # -- long-polls on one request ----------------------------------------------------------

    def register(self, key: Key) -> asyncio.Future[RequestRecord | None]:
        """A future released by the next decision of ``key`` (with its record, if known);
        give it back with ``unregister``."""
        fut: asyncio.Future[RequestRecord | None] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(key, []).append(fut)
        return fut

    def unregister(self, key: Key, fut: asyncio.Future[RequestRecord | None]) -> None:
        futures = self._futures.get(key)
        if futures is not None:
            with contextlib.suppress(ValueError):
                futures.remove(fut)
            if not futures:
                self._futures.pop(key, None)

    def wake(self, key: Key, record: RequestRecord | None = None) -> None:
        """Release the long-polls on this request, handing them the new record if known."""
        for fut in self._futures.pop(key, ()):
            if not fut.done():
                fut.set_result(record)

    def holding(self, key: Key) -> bool:
        """Whether a long-poll of this process waits on ``key``."""
        return bool(self._futures.get(key))

    @property
    def waiting(self) -> int:
        """How many long-polls are open in this process."""
        return sum(len(v) for v in self._futures.values())

    def release_all(self) -> None:
        """Shutting down: every long-poll answers with what it has."""
        for futures in self._futures.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)
        self._futures.clear()

    def on_notify(self, payload: str) -> None:
        """A change made by another server process (PostgreSQL NOTIFY), or this process's own
        notification coming back. Only a decision releases long-polls: waking them on a
        ``created`` or ``updated`` (quorum progress) notification made them answer early with a
        stale "pending"."""
        if payload == "*":
            for key in list(self._futures):
                self.wake(key)
        else:
            with contextlib.suppress(ValueError, TypeError):
                event, kind, project, call_id = json.loads(payload)
                if event == "decided":
                    self.wake((str(project), str(kind), str(call_id)))
        self.bump()

    # -- any change -------------------------------------------------------------------------

    def bump(self) -> None:
        self._changes += 1
        event, self._change_event = self._change_event, asyncio.Event()
        event.set()

    @property
    def change_counter(self) -> int:
        return self._changes

    async def wait_for_change(self, since: int, timeout: float) -> int:
        """Return the global change counter once it differs from ``since`` (or after
        ``timeout`` seconds). Any create/decide/expire, in any process, counts."""
        if self._changes != since:
            return self._changes
        event = self._change_event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.0))
        return self._changes
