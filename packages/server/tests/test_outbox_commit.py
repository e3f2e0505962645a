"""A decision and its webhook announcement are one transaction: if the server process dies the
moment the decision is committed, the announcement is already durable (SQLite and PostgreSQL).
The crash point: every store transaction after the one that decided the request fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests._support.inprocess import STORES, InProcess, database_url, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

WEBHOOK = "http://127.0.0.1:9/hook"  # nobody listens: rows stay in the outbox


class Crashed(Exception):
    """The process is gone: nothing after the crash point reaches the database."""


@pytest.fixture(params=STORES)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
    with database_url(request, tmp_path) as url:
        async with running_app(url, webhook_urls=[WEBHOOK], webhook_retry_base_seconds=60) as app:
            yield app


async def test_a_committed_decision_is_announced_even_if_the_process_dies_right_after(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    assert (await app.create(agent, "hook-1", "deploy", {"env": "prod"})).status_code == 200
    store = app.service.store
    original = store._transaction
    dead: list[bool] = []

    async def crash_after_the_decision(statements: Sequence[Any], *, guard_first: bool) -> bool:
        if dead:
            raise Crashed
        committed: bool = await original(statements, guard_first=guard_first)
        sql = str(statements[0][0]) if statements else ""
        if committed and sql.startswith("UPDATE fl_requests"):
            dead.append(True)
            raise Crashed  # committed; the process dies before doing anything else
        return committed

    monkeypatch.setattr(store, "_transaction", crash_after_the_decision)
    answer = await app.decide(alice, "hook-1", approved=True)
    monkeypatch.setattr(store, "_transaction", original)  # a restarted process

    assert dead, answer.text  # the crash point was reached
    assert (await app.status(agent, "hook-1"))["approved"] is True
    types = [row.type for row in await store.list_outbox(call_id="hook-1")]
    assert "function_call.completed" in types, types
