"""The storage interface: the repositories of each concern composed into one :class:`Store`.

Every method is one short transaction. The SQL is shared by SQLite and PostgreSQL and lives in
the repositories (``_requests``, ``_grants``, ``_audit``, ``_jobs``, ``_outbox``, ``_tokens``,
``_persons``, ``_presence``, ``_meta``); the two engines (``_sqlite``, ``_postgres``) provide the primitives
of :class:`~functionlayer_server._store._engine.Engine`. Rows are in ``_rows``, the schema and
its migrations in ``_ddl``.
"""

from __future__ import annotations

from functionlayer_server._store._audit import AuditRepository
from functionlayer_server._store._engine import NOTIFY_CHANNEL, Engine, NotifyCallback
from functionlayer_server._store._grants import GrantRepository
from functionlayer_server._store._jobs import JobRepository
from functionlayer_server._store._meta import MetaRepository
from functionlayer_server._store._outbox import OutboxRepository
from functionlayer_server._store._persons import PersonRepository
from functionlayer_server._store._presence import AgentMarks, AgentTrace, PresenceRepository
from functionlayer_server._store._requests import RequestRepository
from functionlayer_server._store._rows import (
    AuditRow,
    GrantFields,
    GrantRow,
    IdentityTakenError,
    JobRow,
    NewJob,
    OutboxRow,
    PersonRow,
    RequestRecord,
    SessionRow,
    TokenRow,
    UserRow,
)
from functionlayer_server._store._sql import Statement
from functionlayer_server._store._tokens import TokenRepository

__all__ = [
    "NOTIFY_CHANNEL",
    "AgentMarks",
    "AgentTrace",
    "AuditRow",
    "Engine",
    "GrantFields",
    "GrantRow",
    "IdentityTakenError",
    "JobRow",
    "NewJob",
    "NotifyCallback",
    "OutboxRow",
    "PersonRow",
    "RequestRecord",
    "SessionRow",
    "Statement",
    "Store",
    "TokenRow",
    "UserRow",
]


class Store(
    RequestRepository,
    GrantRepository,
    AuditRepository,
    JobRepository,
    OutboxRepository,
    TokenRepository,
    PersonRepository,
    PresenceRepository,
    MetaRepository,
):
    """Async storage: every repository over one engine (``SQLiteStore``, ``PostgresStore``)."""
