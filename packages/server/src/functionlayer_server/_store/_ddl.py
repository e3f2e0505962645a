"""The schema: tables and indexes (idempotent DDL), the columns added since the first schema,
the indexes on those columns, and the backfills that fill them in an existing database. Both
engines run them at start, in one transaction (SQLite) or under an advisory lock (PostgreSQL).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BACKFILL", "LATE_INDEXES", "migrations", "once", "run_backfills", "schema"]


def schema(dialect: str) -> list[str]:
    """DDL for ``sqlite`` or ``postgresql``; idempotent."""
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    serial = (
        "BIGSERIAL PRIMARY KEY" if dialect == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    return [
        f"""CREATE TABLE IF NOT EXISTS fl_requests (
            kind TEXT NOT NULL, call_id TEXT NOT NULL, project TEXT NOT NULL, run_id TEXT NOT NULL,
            spec TEXT NOT NULL, status TEXT NOT NULL, completed INTEGER NOT NULL,
            expires_at {real}, created_at {real} NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (kind, call_id, project))""",
        "CREATE INDEX IF NOT EXISTS fl_requests_pending ON fl_requests (completed, expires_at)",
        # No index but the primary key may match the equality columns of a lookup by call id
        # (kind, call_id, project). With one that did (first (kind, project, created_at), then
        # (project, kind, created_at) once lookups named the project), PostgreSQL's generic
        # plan for the prepared lookup (psycopg prepares a statement on its 5th use) picked it
        # while the table had no statistics yet, and kept scanning every row of the project
        # and kind for the connection's life. So listings have their own expression (which
        # no lookup by call id names): ``kind:project``, unambiguous (a kind has no ':').
        "CREATE INDEX IF NOT EXISTS fl_requests_listing ON fl_requests "
        "((kind || ':' || project), created_at)",
        "DROP INDEX IF EXISTS fl_requests_project",
        "DROP INDEX IF EXISTS fl_requests_by_project",
        f"""CREATE TABLE IF NOT EXISTS fl_audit (
            id {serial}, kind TEXT NOT NULL, call_id TEXT NOT NULL, at {real} NOT NULL,
            actor TEXT NOT NULL, via TEXT NOT NULL, action TEXT NOT NULL, details TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS fl_audit_call ON fl_audit (call_id)",
        f"""CREATE TABLE IF NOT EXISTS fl_jobs (
            id {serial}, topic TEXT NOT NULL, payload TEXT NOT NULL, due_at {real} NOT NULL,
            claimed_at {real})""",
        "CREATE INDEX IF NOT EXISTS fl_jobs_due ON fl_jobs (due_at)",
        f"""CREATE TABLE IF NOT EXISTS fl_tokens (
            token_hash TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL,
            created_at {real} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS fl_users (
            username TEXT PRIMARY KEY, email TEXT, slack_user_id TEXT, password_hash TEXT NOT NULL,
            created_at {real} NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS fl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS fl_identities (
            kind TEXT NOT NULL, value TEXT NOT NULL, username TEXT NOT NULL,
            PRIMARY KEY (kind, value))""",
        "CREATE INDEX IF NOT EXISTS fl_identities_user ON fl_identities (username)",
        """CREATE TABLE IF NOT EXISTS fl_memberships (
            username TEXT NOT NULL, project TEXT NOT NULL, PRIMARY KEY (username, project))""",
        f"""CREATE TABLE IF NOT EXISTS fl_sessions (
            session_hash TEXT PRIMARY KEY, username TEXT NOT NULL, created_at {real} NOT NULL,
            expires_at {real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS fl_sessions_user ON fl_sessions (username)",
        # Webhook outbox: one row per (event, URL), written with the change it announces.
        f"""CREATE TABLE IF NOT EXISTS fl_outbox (
            id {serial}, event_id TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,
            call_id TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,
            created_at {real} NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {real} NOT NULL, delivered_at {real}, failed_at {real},
            last_error TEXT, UNIQUE (event_id, url))""",
        "CREATE INDEX IF NOT EXISTS fl_outbox_due ON fl_outbox (next_attempt_at) "
        "WHERE delivered_at IS NULL AND failed_at IS NULL",
        "CREATE INDEX IF NOT EXISTS fl_outbox_call ON fl_outbox (call_id)",
        # Grants of future calls by persons (see _grants); uses is a compare-and-set counter.
        f"""CREATE TABLE IF NOT EXISTS fl_grants (
            id TEXT PRIMARY KEY, project TEXT NOT NULL, fn TEXT NOT NULL, scope TEXT NOT NULL,
            token_id TEXT, person TEXT NOT NULL, created_at {real} NOT NULL,
            expires_at {real} NOT NULL, max_uses INTEGER NOT NULL,
            uses INTEGER NOT NULL DEFAULT 0, revoked_at {real}, revoked_by TEXT,
            source_call_id TEXT NOT NULL DEFAULT '', token_name TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX IF NOT EXISTS fl_grants_fn ON fl_grants (project, fn)",
    ]


def migrations(dialect: str) -> list[tuple[str, str, str]]:
    """Columns added since the first schema: ``(table, column, definition)``, added to an
    existing database when missing."""
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        ("fl_requests", "created_by", "TEXT NOT NULL DEFAULT ''"),
        ("fl_requests", "created_by_token", "TEXT NOT NULL DEFAULT ''"),
        ("fl_requests", "agent_seen_at", real),
        ("fl_tokens", "role", "TEXT NOT NULL DEFAULT 'agent'"),
        ("fl_tokens", "approver", "TEXT"),
        ("fl_tokens", "revoked_at", real),
        ("fl_tokens", "token_id", "TEXT"),
        ("fl_users", "disabled", "INTEGER NOT NULL DEFAULT 0"),
        ("fl_audit", "project", "TEXT"),
        ("fl_requests", "group_id", "TEXT"),
        ("fl_requests", "agent_held_at", real),
        ("fl_requests", "agent_left_at", real),
    ]


# Indexes on columns that ``migrations`` may have just added (created after them).
LATE_INDEXES = [
    # Partial: only pending rows, so counting a token's pending requests (its quota, checked
    # on every create) never walks the decided history.
    "DROP INDEX IF EXISTS fl_requests_pending_by_creator",  # by token name: before 0.4.1
    "CREATE INDEX IF NOT EXISTS fl_requests_pending_by_token ON fl_requests "
    "(project, created_by_token) WHERE completed = 0",
    # Partial: only requests in a review group, found by (project, creating token, group id)
    # whatever their age. No lookup by call id names group_id, so no such plan can pick it.
    "CREATE INDEX IF NOT EXISTS fl_requests_group ON fl_requests "
    "(project, created_by_token, group_id, created_at) WHERE group_id IS NOT NULL",
]

# Identities and memberships of persons created before the directory existed.
BACKFILL = [
    "INSERT INTO fl_identities (kind, value, username) SELECT 'email', LOWER(email), username "
    "FROM fl_users WHERE email IS NOT NULL AND email <> '' ON CONFLICT (kind, value) DO NOTHING",
    "INSERT INTO fl_identities (kind, value, username) SELECT 'slack', slack_user_id, username "
    "FROM fl_users WHERE slack_user_id IS NOT NULL AND slack_user_id <> '' "
    "ON CONFLICT (kind, value) DO NOTHING",
    "INSERT INTO fl_memberships (username, project) SELECT u.username, 'default' FROM fl_users u "
    "WHERE NOT EXISTS (SELECT 1 FROM fl_memberships m WHERE m.username = u.username) "
    "ON CONFLICT (username, project) DO NOTHING",
    # The project of audit entries written before it was recorded: call ids were then unique,
    # so the request tells it (an entry whose request is not unique stays unattributed).
    "UPDATE fl_audit SET project = (SELECT MIN(r.project) FROM fl_requests r WHERE "
    "r.kind = fl_audit.kind AND r.call_id = fl_audit.call_id) WHERE project IS NULL AND "
    "(SELECT COUNT(*) FROM fl_requests r WHERE r.kind = fl_audit.kind AND "
    "r.call_id = fl_audit.call_id) = 1",
    # Token ids (immutable; requests are owned by them, not by names) for tokens made before
    # ids existed: derived from the stored hash, so unique, and nothing secret.
    "UPDATE fl_tokens SET token_id = 'h' || SUBSTR(token_hash, 1, 32) WHERE token_id IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS fl_tokens_id ON fl_tokens (token_id)",
    # One live token per name and project. Live duplicates made before this rule keep working
    # under a distinct name (the oldest keeps the name; later ones get '#' and their id), so
    # the unique index can be built and no name is ever shared by two live tokens.
    "UPDATE fl_tokens SET name = name || '#' || token_id WHERE revoked_at IS NULL AND EXISTS "
    "(SELECT 1 FROM fl_tokens o WHERE o.project = fl_tokens.project AND o.name = fl_tokens.name "
    "AND o.revoked_at IS NULL AND (o.created_at < fl_tokens.created_at OR "
    "(o.created_at = fl_tokens.created_at AND o.token_hash < fl_tokens.token_hash)))",
    "CREATE UNIQUE INDEX IF NOT EXISTS fl_tokens_live_name ON fl_tokens (project, name) "
    "WHERE revoked_at IS NULL",
]

# The group id of requests stored before it had a column (it is in the spec's JSON).
_GROUP_OF_SPEC = {
    "sqlite": (
        "json_extract(spec, '$.group_id')",
        "json_valid(spec) AND json_type(spec, '$.group_id') = 'text'",
    ),
    "postgresql": (
        "(spec::json ->> 'group_id')",
        "json_typeof(spec::json -> 'group_id') = 'string'",
    ),
}


def once(dialect: str) -> dict[str, list[str]]:
    """Backfills run once per database (``sqlite`` or ``postgresql``), by the ``fl_meta`` key
    that marks them done: each reads the whole table, and every later write fills its column
    itself."""
    group, is_text = _GROUP_OF_SPEC[dialect]
    return {
        "schema:group_id_backfilled": [
            f"UPDATE fl_requests SET group_id = {group} WHERE group_id IS NULL AND "
            f"spec LIKE '%\"group_id\"%' AND {is_text} AND {group} <> ''"
        ]
    }


def run_backfills(conn: Any, dialect: str) -> None:
    """``BACKFILL``, then each backfill of ``once`` not yet marked done, over a sync connection
    (sqlite3 or psycopg) inside the caller's migration transaction."""
    for statement in BACKFILL:
        conn.execute(statement)
    for key, statements in once(dialect).items():
        if conn.execute(f"SELECT 1 FROM fl_meta WHERE key = '{key}'").fetchone() is not None:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO fl_meta (key, value) VALUES ('{key}', '1') ON CONFLICT (key) DO NOTHING"
        )
