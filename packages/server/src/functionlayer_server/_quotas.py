"""Per-token quotas, so that one agent cannot deny service to the others: how many requests a
token may have pending (``max_pending_per_token``) and how many long-polls it may hold open
(``max_long_polls_per_token``). Over either, the API answers ``429`` with what the quota is and
how to raise it; nothing is stored, so the agent's retry of the same call is the same request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from functionlayer_server._errors import QuotaExceededError
from functionlayer_server._store import Store

__all__ = ["LongPollQuota", "PendingQuota"]

PENDING_RETRY_AFTER = 10  # seconds: long enough for a person to decide something
LONG_POLL_RETRY_AFTER = 1  # seconds: another long-poll of the token may end by then


def _leave(counts: dict[tuple[str, str], int], key: tuple[str, str]) -> None:
    """One fewer for ``key`` (gone at zero: the dict holds only what is in use)."""
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


class PendingQuota:
    """At most ``limit`` pending requests per (project, agent token), counted in the database
    (so every server process sees the same count). Creates of one token that are in flight in
    this process count too: concurrent creates cannot all pass the same check. Across several
    server processes the count may be exceeded by the creates in flight at the same instant."""

    def __init__(self, store: Store, limit: int) -> None:
        self.store = store
        self.limit = limit
        self._in_flight: dict[tuple[str, str], int] = {}

    @asynccontextmanager
    async def creating(
        self, kind: str, call_id: str, project: str, token_id: str, token: str
    ) -> AsyncIterator[None]:
        """Around the insert of a new request by ``token``: refuses with ``QuotaExceededError``
        when the token is at its quota, unless the request already exists (a retry, or a
        restarted agent resuming it, is never refused)."""
        if not self.limit or not token_id:
            yield
            return
        key = (project, token_id)  # counted by the token's id: a name may be reissued
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            # Read after counting ourselves in: of two concurrent creates, the later one sees
            # the other in flight, or (if it already finished) in the database.
            others = self._in_flight[key] - 1
            pending = await self.store.count_pending_of(project, token_id)
            if pending + others >= self.limit and (
                await self.store.get_request(kind, call_id, project) is None
            ):
                raise QuotaExceededError(
                    f"agent token {token!r} already has {pending} pending requests in project "
                    f"{project!r}, its quota is {self.limit}: nothing was stored. Wait until "
                    "some are decided (or give up ones no longer needed), then retry; the "
                    "operator can raise the quota with FUNCTIONLAYER_SERVER_MAX_PENDING_PER_TOKEN "
                    "(or 'functionlayer-server serve --max-pending-per-token N').",
                    retry_after=PENDING_RETRY_AFTER,
                )
            yield
        finally:
            _leave(self._in_flight, key)


class LongPollQuota:
    """At most ``limit`` long-polls held open at once per (project, token), in this server
    process (each holds a connection, hence a file descriptor). Released on every way a
    long-poll ends: answered, timed out, cancelled, client gone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[tuple[str, str], int] = {}

    def held(self, project: str, token_id: str) -> int:
        return self._open.get((project, token_id), 0)

    @contextmanager
    def holding(self, project: str, token_id: str, token: str) -> Iterator[None]:
        if not self.limit:
            yield
            return
        key = (project, token_id)  # by the token's id; its name is for the message
        count = self._open.get(key, 0)
        if count >= self.limit:
            raise QuotaExceededError(
                f"token {token!r} already holds {count} long-polls (?wait=) open in project "
                f"{project!r}, its quota is {self.limit}: wait for one of them to end, or ask "
                "without ?wait=. The operator can raise the quota with "
                "FUNCTIONLAYER_SERVER_MAX_LONG_POLLS_PER_TOKEN (or 'functionlayer-server serve "
                "--max-long-polls-per-token N').",
                retry_after=LONG_POLL_RETRY_AFTER,
            )
        self._open[key] = count + 1
        try:
            yield
        finally:
            _leave(self._open, key)
