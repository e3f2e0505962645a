"""The agent's presence on its pending requests, kept on their rows so every server process
reads the same: when it last asked (``agent_seen_at``), the last heartbeat of a process holding
its long-poll (``agent_held_at``, cleared when the long-poll ends), and when its long-poll was
dropped by its connection closing (``agent_left_at``). Written in batches: one transaction of
a few statements for many requests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from functionlayer_server._store._engine import Engine
from functionlayer_server._store._sql import Statement

__all__ = ["AgentMarks", "AgentTrace", "PresenceRepository"]

RequestKey = tuple[str, str, str]
"""(project, kind, call_id)"""


@dataclass
class AgentMarks:
    """What one batch writes down, all at time ``at``: requests the agent asked about
    (``seen``), held long-polls (``held``: asked now, a process holds it), long-polls that ended
    with an answer (``released``: asked now, no longer held) and long-polls dropped by the
    client (``left``)."""

    at: float
    seen: Sequence[RequestKey] = ()
    held: Sequence[RequestKey] = ()
    released: Sequence[RequestKey] = ()
    left: Sequence[RequestKey] = ()

    def __bool__(self) -> bool:
        return bool(self.seen or self.held or self.released or self.left)


class AgentTrace(NamedTuple):
    """The stored presence of the agent on one request (times, or None)."""

    seen: float | None
    held: float | None
    left: float | None


def _updates(
    assignments: str, values: Sequence[Any], keys: Iterable[RequestKey]
) -> list[Statement]:
    """``UPDATE fl_requests SET <assignments>`` for the pending ones of ``keys``: one statement
    per project and kind (and 500 call ids)."""
    keys = list(keys)
    statements: list[Statement] = []
    for project, kind in sorted({(p, k) for p, k, _ in keys}):
        ids = sorted({c for p, k, c in keys if (p, k) == (project, kind)})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            statements.append(
                (
                    # Pending ones only: presence is shown while a request waits, and a
                    # decided row is not rewritten for nothing.
                    f"UPDATE fl_requests SET {assignments} WHERE kind = ? "
                    f"AND project = ? AND completed = 0 AND call_id IN ({marks})",
                    (*values, kind, project, *chunk),
                )
            )
    return statements


class PresenceRepository(Engine):
    async def mark_agents(self, marks: AgentMarks) -> None:
        """Write down a batch (see ``AgentMarks``): one transaction, a few statements (on
        PostgreSQL each statement is a round trip)."""
        at = marks.at
        # Hearing from the agent ends an earlier drop, whatever the clocks of the processes.
        asked = "agent_seen_at = ?, agent_left_at = NULL"
        statements = [
            *_updates(asked, (at,), marks.seen),
            *_updates(f"{asked}, agent_held_at = ?", (at, at), marks.held),
            # Not the heartbeat of another process that holds it since.
            *_updates(
                f"{asked}, agent_held_at = "
                "CASE WHEN agent_held_at <= ? THEN NULL ELSE agent_held_at END",
                (at, at),
                marks.released,
            ),
            *_updates("agent_left_at = ?", (at,), marks.left),
        ]
        if statements:
            await self._transaction(statements, guard_first=False)

    async def agent_trace(self, kind: str, call_id: str, project: str) -> AgentTrace:
        rows = await self._fetch(
            "SELECT agent_seen_at, agent_held_at, agent_left_at FROM fl_requests "
            "WHERE kind = ? AND call_id = ? AND project = ?",
            (kind, call_id, project),
        )
        if not rows:
            return AgentTrace(None, None, None)
        seen, held, left = (float(v) if v is not None else None for v in rows[0])
        return AgentTrace(seen, held, left)
