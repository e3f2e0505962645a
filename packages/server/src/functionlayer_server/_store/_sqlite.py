"""SQLite storage: one connection owned by one worker thread, so the event loop never blocks on
disk and statements never interleave. WAL with ``synchronous=NORMAL`` keeps every committed
change across a killed process (only an OS crash may lose the last commits)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from functionlayer_server._store._base import Statement, Store, schema

__all__ = ["SQLiteStore", "sqlite_path", "sqlite_prepare"]


def sqlite_path(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL (expected sqlite:///path): {url!r}")
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError(f"sqlite URL without a path: {url!r}")
    return path


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def sqlite_prepare(url: str) -> sqlite3.Connection:
    """Create the schema (idempotent) and return a connection for one-off sync work."""
    conn = _connect(sqlite_path(url))
    conn.execute("BEGIN IMMEDIATE")
    try:
        for ddl in schema("sqlite"):
            conn.execute(ddl)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return conn


class SQLiteStore(Store):
    def __init__(self, url: str) -> None:
        self._path = sqlite_path(url)
        self._url = url
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fl-sqlite")
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, sqlite_prepare, self._url)

    async def close(self) -> None:
        if self._executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None or self._conn is None:
            raise RuntimeError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _fetch_sync(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        assert self._conn is not None
        return self._conn.execute(sql, tuple(params)).fetchall()

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = await self._run(self._fetch_sync, sql, params)
        return result

    def _transaction_sync(self, statements: Sequence[Statement], guard_first: bool) -> bool:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for index, (sql, params) in enumerate(statements):
                cursor = conn.execute(sql, tuple(params))
                if index == 0 and guard_first and cursor.rowcount == 0:
                    conn.execute("ROLLBACK")
                    return False
            conn.execute("COMMIT")
            return True
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def _transaction(self, statements: Sequence[Statement], *, guard_first: bool) -> bool:
        result: bool = await self._run(self._transaction_sync, statements, guard_first)
        return result
