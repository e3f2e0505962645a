"""PostgreSQL storage (psycopg 3, async): a small connection pool for statements and one
dedicated connection that LISTENs, so a decision made by any server process wakes the agents
waiting on every other process within milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg

from functionlayer_server._store._base import Store
from functionlayer_server._store._ddl import LATE_INDEXES, migrations, run_backfills, schema
from functionlayer_server._store._engine import NOTIFY_CHANNEL, NotifyCallback
from functionlayer_server._store._rows import AuditRow
from functionlayer_server._store._sql import Statement, audit_statement

__all__ = ["PostgresStore", "postgres_prepare"]

log = logging.getLogger("functionlayer_server.store")

_MIGRATION_LOCK = 7_245_001  # pg_advisory_xact_lock key: one process migrates at a time


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


def postgres_prepare(url: str) -> psycopg.Connection[Any]:
    """Create the schema (idempotent, serialised across processes) and return a sync connection."""
    conn = psycopg.connect(url, autocommit=True)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        for ddl in schema("postgresql"):
            conn.execute(ddl)
        for table, column, definition in migrations("postgresql"):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {definition}")
        key = {
            str(row[0])
            for row in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'fl_requests'::regclass "
                "AND i.indisprimary"
            )
        }
        if "project" not in key:  # call ids were global before: now unique per project
            conn.execute(
                "ALTER TABLE fl_requests DROP CONSTRAINT fl_requests_pkey, "
                "ADD CONSTRAINT fl_requests_pkey PRIMARY KEY (kind, call_id, project)"
            )
        for statement in LATE_INDEXES:
            conn.execute(statement)
        run_backfills(conn, "postgresql")
    return conn


class PostgresStore(Store):
    shared = True

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self._url = url
        self._pool_size = pool_size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any] | None] | None = None
        self._all: list[psycopg.AsyncConnection[Any]] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self) -> None:
        self._idle = asyncio.Queue()
        # Connections are opened lazily (None = a slot with no connection yet).
        for _ in range(self._pool_size):
            self._idle.put_nowait(None)
        async with self._connection() as conn:  # fail fast when the database is unreachable
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        self._closing = True
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listen_task
        for conn in self._all:
            with contextlib.suppress(Exception):
                await conn.close()
        self._all.clear()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._idle is None:
            raise RuntimeError("store is not open")
        conn = await self._idle.get()
        try:
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                self._all.append(conn)
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError):
            # A broken connection: drop it, the slot reconnects on next use.
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
                if conn in self._all:
                    self._all.remove(conn)
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cursor = await conn.execute(_pg(sql), tuple(params))
            return await cursor.fetchall()

    async def _transaction(
        self, statements: Sequence[Statement], *, guard_first: bool, guarded: int = 1
    ) -> bool:
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    for index, (sql, params) in enumerate(statements):
                        cursor = await conn.execute(_pg(sql), tuple(params))
                        if index < guarded and guard_first and cursor.rowcount == 0:
                            raise _Rollback
            except _Rollback:
                return False
            return True

    def _notify_statement(self, payload: str) -> Statement | None:
        return ("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, payload))

    def _audit_statements(self, audit: AuditRow, notify: str | None) -> list[Statement]:
        # One statement (one round trip) for both: the notification is sent at commit
        # wherever it stands in the transaction.
        if notify is None:
            return super()._audit_statements(audit, notify)
        _, params = audit_statement(audit)
        return [
            (
                "INSERT INTO fl_audit (kind, call_id, at, actor, via, action, details, project) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM pg_notify(?, ?)",
                (*params, NOTIFY_CHANNEL, notify),
            )
        ]

    async def listen(self, callback: NotifyCallback) -> None:
        self._listen_task = asyncio.create_task(self._listen_loop(callback), name="fl-pg-listen")

    async def _listen_loop(self, callback: NotifyCallback) -> None:
        delay = 0.1
        first = True
        while not self._closing:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if not first:
                        callback("*")  # we may have missed notifications: everyone re-checks
                    first = False
                    delay = 0.1
                    async for notify in conn.notifies():
                        callback(notify.payload)
                finally:
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


class _Rollback(Exception):
    pass
