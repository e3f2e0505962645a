"""The SQL statements the repositories share: the columns they read, and the rows a change
writes in its own transaction (its audit entry, webhook outbox rows, jobs, the request itself).

Statements use ``?`` placeholders; the PostgreSQL engine rewrites them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from functionlayer_server._store._rows import (
    AUDIT_FIELDS,
    GRANT_FIELDS,
    OUTBOX_FIELDS,
    REQUEST_FIELDS,
    AuditRow,
    NewJob,
    OutboxRow,
    RequestRecord,
)

__all__ = [
    "AUDIT_COLUMNS",
    "GRANT_COLUMNS",
    "OUTBOX_COLUMNS",
    "REQUEST_COLUMNS",
    "Statement",
    "audit_statement",
    "group_of",
    "insert_request_statement",
    "job_statements",
    "outbox_statements",
    "where_clause",
]

Statement = tuple[str, Sequence[Any]]

REQUEST_COLUMNS = ", ".join(REQUEST_FIELDS)
AUDIT_COLUMNS = ", ".join(AUDIT_FIELDS)
GRANT_COLUMNS = ", ".join(GRANT_FIELDS)
OUTBOX_COLUMNS = ", ".join(OUTBOX_FIELDS)


def where_clause(
    equal: Mapping[str, Any], *conditions: tuple[str, Sequence[Any]] | None
) -> tuple[str, list[Any]]:
    """A listing's filter: ``column = ?`` for each value of ``equal`` that is not None, then
    each condition given (its SQL and parameters). Returns ``WHERE ... `` (empty when nothing
    filters) and its parameters."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    for condition in conditions:
        if condition is not None:
            where.append(condition[0])
            params.extend(condition[1])
    return (f"WHERE {' AND '.join(where)} " if where else ""), params


def group_of(spec: str) -> str | None:
    """The review group id in a request's stored spec (JSON): a non-empty string, else None.
    Kept in its own column (``group_id``) so a group is found through an index."""
    if '"group_id"' not in spec:
        return None
    group = json.loads(spec).get("group_id")
    return group if isinstance(group, str) and group else None


def insert_request_statement(record: RequestRecord) -> Statement:
    """Insert ``record`` unless its ``(kind, call_id, project)`` exists (then no row changes)."""
    return (
        f"INSERT INTO fl_requests ({REQUEST_COLUMNS}, group_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, call_id, project) DO NOTHING",
        (
            record.kind,
            record.call_id,
            record.project,
            record.run_id,
            record.spec,
            record.status,
            int(record.completed),
            record.expires_at,
            record.created_at,
            record.version,
            record.created_by,
            record.created_by_token,
            group_of(record.spec),
        ),
    )


def audit_statement(audit: AuditRow) -> Statement:
    return (
        f"INSERT INTO fl_audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            audit.kind,
            audit.call_id,
            audit.at,
            audit.actor,
            audit.via,
            audit.action,
            json.dumps(audit.details, sort_keys=True, default=str),
            audit.project,
        ),
    )


def job_statements(jobs: Sequence[NewJob]) -> list[Statement]:
    """One INSERT for all of ``jobs`` (none without jobs)."""
    if not jobs:
        return []
    params: list[Any] = []
    for job in jobs:
        params.extend((job.topic, json.dumps(job.payload, sort_keys=True), job.due_at))
    values = ", ".join(["(?, ?, ?)"] * len(jobs))
    return [(f"INSERT INTO fl_jobs (topic, payload, due_at) VALUES {values}", params)]


def outbox_statements(rows: Sequence[OutboxRow]) -> list[Statement]:
    return [
        (
            "INSERT INTO fl_outbox (event_id, type, kind, call_id, url, payload, created_at, "
            "attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) "
            "ON CONFLICT (event_id, url) DO NOTHING",
            (
                row.event_id,
                row.type,
                row.kind,
                row.call_id,
                row.url,
                row.payload,
                row.created_at,
                row.created_at,
            ),
        )
        for row in rows
    ]
