"""Storage backends behind one interface: SQLite (default, embedded) and PostgreSQL."""

from __future__ import annotations

import secrets
from types import ModuleType
from typing import Any

from functionlayer_server._extras import require_extra
from functionlayer_server._store._base import (
    AgentMarks,
    AgentTrace,
    AuditRow,
    GrantFields,
    GrantRow,
    JobRow,
    NewJob,
    OutboxRow,
    RequestRecord,
    Store,
    TokenRow,
    UserRow,
)

__all__ = [
    "AgentMarks",
    "AgentTrace",
    "AuditRow",
    "GrantFields",
    "GrantRow",
    "JobRow",
    "NewJob",
    "OutboxRow",
    "RequestRecord",
    "Store",
    "TokenRow",
    "UserRow",
    "is_postgres_url",
    "open_store",
    "prepare_database",
]


def _postgres_store_module() -> ModuleType:
    """The PostgreSQL store, whose psycopg comes with the ``[postgres]`` extra. (Not named
    ``_postgres``: importing the submodule sets that attribute on this package.)"""
    return require_extra("postgres", "functionlayer_server._store._postgres")


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str) -> Store:
    """A store for the URL (not yet opened: ``await store.open()``)."""
    if is_postgres_url(url):
        store: Store = _postgres_store_module().PostgresStore(url)
        return store
    if url.startswith("sqlite:///"):
        from functionlayer_server._store._sqlite import SQLiteStore

        return SQLiteStore(url)
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.sqlite3 or postgresql://..."
    )


def prepare_database(url: str) -> str:
    """Create the schema if needed and return the server's secret key, generating and storing
    one on first use. Synchronous: runs once before the app starts serving."""
    if is_postgres_url(url):
        return _secret_key(_postgres_store_module().postgres_prepare(url), "%s")
    from functionlayer_server._store._sqlite import sqlite_prepare

    open_store(url)  # validates the URL
    return _secret_key(sqlite_prepare(url), "?")


def _secret_key(conn: Any, mark: str) -> str:
    """The stored secret key (stored now if there is none) over a prepared database's sync
    connection (sqlite3 or psycopg: ``mark`` is its placeholder), which is closed after."""
    try:
        conn.execute(
            "INSERT INTO fl_meta (key, value) VALUES ('secret_key', "
            f"{mark}) ON CONFLICT (key) DO NOTHING",
            (secrets.token_urlsafe(48),),
        )
        row = conn.execute("SELECT value FROM fl_meta WHERE key = 'secret_key'").fetchone()
    finally:
        conn.close()
    assert row is not None
    return str(row[0])
