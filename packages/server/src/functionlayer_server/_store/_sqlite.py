"""SQLite storage.

Statements are point lookups and single-row writes in WAL mode with ``synchronous=NORMAL``
(no fsync per commit), which take tens of microseconds: they run inline on the event loop,
because handing each one to a thread costs ten times more than the statement. What could take
longer runs on one worker thread with its own connections: listings and exports (read
connection) and WAL checkpoints (automatic checkpoints are off on the main connection so no
request ever pays for one). Every committed change survives a killed process; only an OS crash
may lose the last commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from functionlayer_server._store._base import Store
from functionlayer_server._store._ddl import LATE_INDEXES, migrations, run_backfills, schema
from functionlayer_server._store._sql import Statement

__all__ = ["SQLiteStore", "sqlite_path", "sqlite_prepare"]

log = logging.getLogger("functionlayer_server.store")

CHECKPOINT_SECONDS = 1.0


def sqlite_path(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL (expected sqlite:///path): {url!r}")
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError(f"sqlite URL without a path: {url!r}")
    return path


def _connect(path: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=check_same_thread, timeout=2.0
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Short: a statement waiting for another process's write lock blocks the event loop.
    conn.execute("PRAGMA busy_timeout=2000")
    return conn


def sqlite_prepare(url: str) -> sqlite3.Connection:
    """Create the schema (idempotent) and return a connection for one-off sync work."""
    conn = _connect(sqlite_path(url))
    conn.execute("BEGIN IMMEDIATE")
    try:
        for ddl in schema("sqlite"):
            conn.execute(ddl)
        for table, column, definition in migrations("sqlite"):
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        _rekey_requests(conn)  # before the late indexes: it rebuilds the table
        for statement in LATE_INDEXES:
            conn.execute(statement)
        run_backfills(conn, "sqlite")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return conn


def _rekey_requests(conn: sqlite3.Connection) -> None:
    """Call ids were global before; now they are unique per project. SQLite cannot change a
    primary key in place: the table is rebuilt (same columns and rows), inside the caller's
    transaction."""
    info = list(conn.execute("PRAGMA table_info(fl_requests)"))
    if any(row[1] == "project" and row[5] > 0 for row in info):
        return
    columns = ", ".join(str(row[1]) for row in info)
    conn.execute("ALTER TABLE fl_requests RENAME TO fl_requests_global")
    conn.execute(schema("sqlite")[0])
    for table, column, definition in migrations("sqlite"):
        if table == "fl_requests":
            conn.execute(f"ALTER TABLE fl_requests ADD COLUMN {column} {definition}")
    conn.execute(f"INSERT INTO fl_requests ({columns}) SELECT {columns} FROM fl_requests_global")
    conn.execute("DROP TABLE fl_requests_global")  # and its indexes: made again below
    for ddl in schema("sqlite"):
        conn.execute(ddl)


class SQLiteStore(Store):
    def __init__(self, url: str) -> None:
        self._path = sqlite_path(url)
        self._url = url
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._worker_conn: sqlite3.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fl-sqlite")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open_worker)
        self._conn = sqlite_prepare(self._url)
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="fl-sqlite-ckpt")

    def _open_worker(self) -> None:
        self._worker_conn = _connect(self._path)

    def _close_worker(self) -> None:
        if self._worker_conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._worker_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._worker_conn.close()
            self._worker_conn = None

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_worker)
            self._executor.shutdown(wait=True)
            self._executor = None

    def _checkpoint(self) -> None:
        if self._worker_conn is not None:
            self._worker_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def _checkpoint_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await loop.run_in_executor(self._executor, self._checkpoint)
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)

    def _main(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._main().execute(sql, tuple(params)).fetchall()

    def _fetch_worker(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        assert self._worker_conn is not None
        return self._worker_conn.execute(sql, tuple(params)).fetchall()

    async def _fetch_many(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._executor is None:
            raise RuntimeError("store is not open")
        rows: list[tuple[Any, ...]] = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._fetch_worker, sql, params
        )
        return rows

    async def _transaction(
        self, statements: Sequence[Statement], *, guard_first: bool, guarded: int = 1
    ) -> bool:
        conn = self._main()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for index, (sql, params) in enumerate(statements):
                cursor = conn.execute(sql, tuple(params))
                if index < guarded and guard_first and cursor.rowcount == 0:
                    conn.execute("ROLLBACK")
                    return False
            conn.execute("COMMIT")
            return True
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
