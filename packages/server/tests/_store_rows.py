"""Rows written straight into a PostgreSQL store's ``fl_requests``, for the tests that look at
the query plans PostgreSQL picks once a table holds many rows."""

from __future__ import annotations

from typing import Any

import psycopg

OPEN_CALL: dict[str, Any] = {
    "kind": "function_call",
    "run_id": "r",
    "spec": "{}",
    "status": "{}",
    "completed": 0,
    "version": 0,
}


def insert_calls(conn: psycopg.Connection[Any], count: int, **columns: Any) -> None:
    """``count`` open function calls ``c0``... created at 0.0, 1.0...; each of ``columns`` is a
    value, or a function of the row's number that gives it."""
    for n in range(count):
        row = {**OPEN_CALL, "call_id": f"c{n}", "created_at": float(n)}
        row.update({k: v(n) if callable(v) else v for k, v in columns.items()})
        names = ", ".join(row)
        marks = ", ".join(["%s"] * len(row))
        conn.execute(
            f"INSERT INTO fl_requests ({names}) VALUES ({marks})",
            list(row.values()),
        )
