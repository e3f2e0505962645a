"""The primitives every repository is written against, provided by the two engines (SQLite,
PostgreSQL): a read, a read of many rows, and one transaction of statements with an optional
guard (the compare-and-set: roll back when the guarded statements changed no row)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from functionlayer_server._store._rows import AuditRow
from functionlayer_server._store._sql import Statement, audit_statement

__all__ = ["NOTIFY_CHANNEL", "Engine", "NotifyCallback"]

NotifyCallback = Callable[[str], None]

NOTIFY_CHANNEL = "functionlayer"


class Engine(ABC):
    """Async storage primitives. Subclasses (the engines) provide them; the repositories hold
    the SQL."""

    #: True when other server processes may share the database (then they notify each other).
    shared = False

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

    async def _execute(self, sql: str, params: Sequence[Any] = (), *, guard: bool = False) -> bool:
        """One statement in its own transaction; with ``guard``, False (rolled back) when it
        changed no row."""
        return await self._transaction([(sql, params)], guard_first=guard)

    def _notify_statement(self, payload: str) -> Statement | None:
        """A statement that tells other server processes about a change (none for SQLite)."""
        return None

    def _audit_statements(self, audit: AuditRow, notify: str | None) -> list[Statement]:
        """The audit row of a change and, if ``notify``, the notification to other server
        processes (a store may write both with one statement)."""
        statements = [audit_statement(audit)]
        if notify is not None and (stmt := self._notify_statement(notify)) is not None:
            statements.append(stmt)
        return statements

    async def listen(self, callback: NotifyCallback) -> None:  # noqa: B027 - optional hook
        """Call ``callback(payload)`` for changes made by other processes (PostgreSQL)."""
