"""A review group is found by (project, creating token, group id) through its own index, on
SQLite and PostgreSQL: whole whatever its age (here behind 2,001 newer calls of the project),
never mixed with another token's or project's group of the same id, and in a database from
before the ``group_id`` column, after the migration's one-time backfill."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from functionlayer_server._store import (
    AuditRow,
    RequestRecord,
    Store,
    is_postgres_url,
    open_store,
    prepare_database,
)

from packages.server.tests._store_rows import insert_calls
from tests._support.inprocess import STORES, database_url, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

KIND = "function_call"


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request, tmp_path) as url:
        prepare_database(url)
        yield url


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _record(
    call_id: str, at: float, *, group: object = None, token: str = "tok-a", project: str = "p"
) -> RequestRecord:
    spec: dict[str, object] = {"fn": "wire", "kwargs": {"amount": 5}}
    if group is not None:
        spec["group_id"] = group
    return RequestRecord(
        kind=KIND,
        call_id=call_id,
        project=project,
        run_id="turn",
        spec=json.dumps(spec),
        status="{}",
        completed=False,
        expires_at=None,
        created_at=at,
        version=0,
        created_by=token,
        created_by_token=token,
    )


async def _insert(store: Store, *records: RequestRecord) -> None:
    for record in records:
        audit = AuditRow(KIND, record.call_id, record.created_at, "agent:t", "api", "created", {})
        _, inserted = await store.insert_request(record, audit)
        assert inserted


async def _members(
    store: Store, group: str, *, token: str = "tok-a", project: str = "p"
) -> list[str]:
    found = await store.list_group(KIND, project=project, token_id=token, group_id=group)
    return [r.call_id for r in found]


async def test_a_group_behind_2001_newer_calls_is_found_whole_and_alone(store: Store) -> None:
    await _insert(
        store,
        _record("g-0", 1.0, group="turn-1"),
        _record("g-1", 2.0, group="turn-1"),
        _record("g-2", 3.0, group="turn-1"),
        _record("theirs", 3.5, group="turn-1", token="tok-b"),  # another agent's group
        _record("elsewhere", 3.6, group="turn-1", project="q"),  # another project's
        _record("other-turn", 3.7, group="turn-2"),
    )
    await _insert(store, *(_record(f"newer-{n}", 10.0 + n) for n in range(2001)))
    newest = await store.list_requests(KIND, project="p", limit=2000)
    assert "g-2" not in {r.call_id for r in newest}  # out of reach of a scan of the newest

    assert await _members(store, "turn-1") == ["g-0", "g-1", "g-2"]  # oldest first
    assert await _members(store, "turn-1", token="tok-b") == ["theirs"]
    assert await _members(store, "turn-1", project="q") == ["elsewhere"]
    assert await _members(store, "turn-2") == ["other-turn"]
    assert await _members(store, "no-such-turn") == []
    limited = await store.list_group(
        KIND, project="p", token_id="tok-a", group_id="turn-1", limit=2
    )
    assert [r.call_id for r in limited] == ["g-0", "g-1"]


def _execute(url: str, statements: list[str]) -> None:
    """Raw SQL on the database, as an older server's schema would have it."""
    if is_postgres_url(url):
        with psycopg.connect(url, autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)
        return
    conn = sqlite3.connect(url[len("sqlite:///") :])
    try:
        for sql in statements:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


async def test_a_database_from_before_the_group_column_is_backfilled_once(url: str) -> None:
    store = open_store(url)
    await store.open()
    try:
        await _insert(
            store,
            _record("old-0", 1.0, group="turn-1"),
            _record("old-1", 2.0, group="turn-1"),
            _record("number", 3.0, group=7),  # not a group id: no group
            _record("empty", 4.0, group=""),
            _record("none", 5.0),
        )
    finally:
        await store.close()
    # The schema before the column: no index, no column, no marker of the backfill.
    _execute(
        url,
        [
            "DROP INDEX fl_requests_group",
            "ALTER TABLE fl_requests DROP COLUMN group_id",
            "DELETE FROM fl_meta WHERE key = 'schema:group_id_backfilled'",
        ],
    )
    prepare_database(url)  # what the next server start does
    store = open_store(url)
    await store.open()
    try:
        assert await _members(store, "turn-1") == ["old-0", "old-1"]
        assert await _members(store, "7") == []
        assert await _members(store, "") == []
        # Once: a row left without its column after the backfill is not read again at start.
        _execute(url, ["UPDATE fl_requests SET group_id = NULL WHERE call_id = 'old-1'"])
        prepare_database(url)
        assert await _members(store, "turn-1") == ["old-0"]
    finally:
        await store.close()


GROUP_LOOKUP = (
    "SELECT * FROM fl_requests WHERE project = {0} AND created_by_token = {1} AND group_id = {2} "
    "AND group_id IS NOT NULL AND kind = {3} ORDER BY created_at, call_id LIMIT {4}"
)


def test_the_group_lookup_uses_its_index_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'groups.sqlite3'}"
    prepare_database(url)
    conn = sqlite3.connect(tmp_path / "groups.sqlite3")
    sql = GROUP_LOOKUP.format(*["?"] * 5)
    plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",) * 5))
    conn.close()
    assert "fl_requests_group" in plan, plan


@pytest.mark.postgres
def test_the_group_lookup_uses_its_index_on_postgres_in_a_generic_plan(
    postgres_url: str,
) -> None:
    prepare_database(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        insert_calls(
            conn,
            300,
            project="p",
            created_by_token="tok",
            group_id=lambda n: f"g{n % 100}" if n % 2 else None,
        )
        conn.execute("ANALYZE fl_requests")
        conn.prepare_threshold = None
        conn.execute("SET plan_cache_mode = force_generic_plan")
        sql = GROUP_LOOKUP.format("$1", "$2", "$3", "$4", "$5")
        conn.execute(f"PREPARE q (text, text, text, text, int) AS {sql}")
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN EXECUTE q ('p', 'tok', 'g1', 'function_call', 50)")
        )
    assert "fl_requests_group" in plan, plan


async def test_the_service_shows_a_group_behind_2001_newer_calls_whole(
    url: str,
) -> None:
    """``group_members`` (the inbox's group page, Slack's and Discord's group message) reads
    the group through the store's index, not among the project's newest calls."""
    async with running_app(url) as app:
        agent = await app.agent()
        for n in range(3):
            answer = await app.create(agent, f"turn-{n}", "wire", {"amount": n}, group_id="t1")
            assert answer.status_code == 200, answer.text
        store = app.service.store
        first = await store.get_request(KIND, "turn-0", "default")
        assert first is not None
        ungrouped = json.dumps({k: v for k, v in json.loads(first.spec).items() if k != "group_id"})
        await _insert(
            store,
            *(
                dataclasses.replace(
                    first, call_id=f"newer-{n}", spec=ungrouped, created_at=first.created_at + 1 + n
                )
                for n in range(2001)
            ),
        )
        members = await app.service.group_members("turn-2", project="default")
        assert [m.call_id for m in members] == ["turn-0", "turn-1", "turn-2"]
