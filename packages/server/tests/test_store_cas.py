"""A request changes by compare-and-set on its version: of two writers that read the same
version, one wins and the other changes nothing (SQLite and PostgreSQL). Deterministic: the
concurrent case holds both writers at the store until both have read the request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from functionlayer_server._store import AuditRow, RequestRecord

from tests._support.inprocess import STORES, InProcess, database_url, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture(params=STORES)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
    with database_url(request, tmp_path) as url:
        async with running_app(url) as app:
            yield app


def _audit(call_id: str, action: str) -> AuditRow:
    return AuditRow(
        kind="function_call",
        call_id=call_id,
        at=1.0,
        actor="t",
        via="api",
        action=action,
        details={},
    )


async def test_a_write_from_a_stale_version_changes_nothing(app: InProcess) -> None:
    agent = await app.agent()
    assert (await app.create(agent, "cas-1", "f", {"a": 1})).status_code == 200
    store = app.service.store
    read: RequestRecord = await store.get_request("function_call", "cas-1", "default")

    async def decide(approved: bool, comment: str, action: str) -> bool:
        ok: bool = await store.update_request(
            "function_call",
            "cas-1",
            project="default",
            status=json.dumps({"approved": approved, "comment": comment}),
            completed=True,
            expected_version=read.version,
            audit=_audit("cas-1", action),
        )
        return ok

    first = await decide(True, "first", "approved")
    late = await decide(False, "second", "rejected")  # read the same version, writes second

    assert (first, late) == (True, False)
    stored = await store.get_request("function_call", "cas-1", "default")
    assert json.loads(stored.status)["comment"] == "first"
    assert stored.version == read.version + 1
    # The losing write's audit entry is not recorded either (same transaction).
    actions = [e.action for e in await app.service.audit_trail("cas-1")]
    assert "rejected" not in actions


def _hold_writes(store: Any, writers: int) -> Callable[..., Awaitable[bool]]:
    """``store.update_request`` that holds the first ``writers`` calls until all arrived
    (each has read the request by then)."""
    original = store.update_request
    arrived: list[int] = []
    everyone = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> bool:
        if len(arrived) < writers:
            arrived.append(1)
            if len(arrived) == writers:
                everyone.set()
            await asyncio.wait_for(everyone.wait(), 10)
        result: bool = await original(*args, **kwargs)
        return result

    return held


async def test_two_people_deciding_at_once_one_decision_stands(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await app.agent()
    alice = await app.person("alice")
    bob = await app.person("bob")
    assert (await app.create(agent, "race-1", "drop_table", {"t": "users"})).status_code == 200
    monkeypatch.setattr(app.service.store, "update_request", _hold_writes(app.service.store, 2))

    approve, reject = await asyncio.gather(
        app.decide(alice, "race-1", approved=True),
        app.decide(bob, "race-1", approved=False, comment="not today"),
    )

    codes = sorted([approve.status_code, reject.status_code])
    assert codes == [200, 409], (approve.text, reject.text)
    winner = approve if approve.status_code == 200 else reject
    final = await app.status(agent, "race-1")
    assert final["approved"] == winner.json()["status"]["approved"]
    assert final["responded_by"] == ("alice" if winner is approve else "bob")
    decided = [
        e.action
        for e in await app.service.audit_trail("race-1")
        if e.action in ("approved", "rejected")
    ]
    assert len(decided) == 1
