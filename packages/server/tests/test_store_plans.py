"""Lookups by call id stay index lookups on PostgreSQL, whatever the table's statistics.

psycopg prepares a statement on its 5th use, and PostgreSQL may then run it with a generic
plan. On a table without statistics yet (a new server), an index leading with ``kind`` other
than the primary key won the generic plan for ``kind = $1 AND call_id = $2`` and every lookup
scanned all the rows of that kind, for as long as the connection lived: the server slowed down
linearly with the number of requests (seen in bench/server_latency.py on PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from functionlayer_server._store import prepare_database

from packages.server.tests._store_rows import insert_calls

LOOKUPS = {
    "get_request": "SELECT * FROM fl_requests WHERE kind = $1 AND call_id = $2 AND project = $3",
    "find_requests": "SELECT * FROM fl_requests WHERE kind = $1 AND call_id = $2",
    "update_request": "UPDATE fl_requests SET status = $4, completed = 1, version = version + 1 "
    "WHERE kind = $1 AND call_id = $2 AND project = $3 AND version = $5",
    "agent_trace": "SELECT agent_seen_at, agent_held_at, agent_left_at FROM fl_requests "
    "WHERE kind = $1 AND call_id = $2 AND project = $3",
}
TYPES = {
    "get_request": "text, text, text",
    "find_requests": "text, text",
    "update_request": "text, text, text, text, int",
    "agent_trace": "text, text, text",
}
ARGS = {
    "get_request": "'function_call', 'c1', 'p1'",
    "find_requests": "'function_call', 'c1'",
    "update_request": "'function_call', 'c1', 'p1', '{}', 0",
    "agent_trace": "'function_call', 'c1', 'p1'",
}


def _generic_plans(conn: psycopg.Connection) -> dict[str, str]:
    conn.prepare_threshold = None  # our own PREPARE only (DEALLOCATE ALL would drop psycopg's)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    plans = {}
    for name, sql in LOOKUPS.items():
        conn.execute("DEALLOCATE ALL")
        conn.execute(f"PREPARE q ({TYPES[name]}) AS {sql}")
        plans[name] = "\n".join(r[0] for r in conn.execute(f"EXPLAIN EXECUTE q ({ARGS[name]})"))
    return plans


def test_call_id_lookups_use_the_primary_key_before_and_after_statistics(
    postgres_url: str,
) -> None:
    prepare_database(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        seen = {"no statistics": _generic_plans(conn)}
        insert_calls(conn, 300, project=lambda n: f"p{n % 3}")
        seen["300 rows, stale statistics"] = _generic_plans(conn)
        conn.execute("ANALYZE fl_requests")
        seen["analyzed"] = _generic_plans(conn)
    for when, plans in seen.items():
        for name, plan in plans.items():
            assert "fl_requests_pkey" in plan, f"{name} ({when}) does not use the key:\n{plan}"


def test_an_existing_database_loses_the_index_that_misled_the_planner(postgres_url: str) -> None:
    prepare_database(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX fl_requests_project ON fl_requests (kind, project, created_at)")
        conn.execute(
            "CREATE INDEX fl_requests_by_project ON fl_requests (project, kind, created_at)"
        )
    prepare_database(postgres_url)  # what every server start does
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'fl_requests'"
            )
        }
    assert "fl_requests_project" not in names
    assert "fl_requests_by_project" not in names  # misled the plan once lookups named projects
    assert "fl_requests_listing" in names


@pytest.mark.parametrize("name", sorted(LOOKUPS))
def test_sqlite_uses_the_primary_key_too(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / 'plans.sqlite3'}"
    prepare_database(url)
    conn = sqlite3.connect(tmp_path / "plans.sqlite3")
    sql = LOOKUPS[name]
    for n in range(5, 0, -1):
        sql = sql.replace(f"${n}", "?")
    count = sql.count("?")
    plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",) * count))
    conn.close()
    assert "sqlite_autoindex_fl_requests_1" in plan or "PRIMARY KEY" in plan, plan


def test_project_listings_use_their_own_index(postgres_url: str) -> None:
    """Listings name ``kind:project`` (the expression of fl_requests_listing), which no lookup
    by call id does: each keeps its own index."""
    prepare_database(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        insert_calls(conn, 300, project=lambda n: f"p{n % 30}")
        conn.execute("ANALYZE fl_requests")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT * FROM fl_requests WHERE (kind || ':' || project) = "
                "'function_call:p1' ORDER BY created_at DESC, call_id LIMIT 200"
            )
        )
    assert "fl_requests_listing" in plan, plan
