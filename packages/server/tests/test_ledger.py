"""The ledger's write path (``_requests._ledger``), on SQLite and PostgreSQL: a commit whose
compare-and-set loses writes nothing and tells nobody; one that wins stores the status, its audit
entry, its webhook rows and its planned jobs in one transaction, then wakes and tells; a
transaction that dies leaves no part of the change behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from functionlayer import FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService, ManualClock, ServiceEvent, Settings
from functionlayer_server._store import (
    AuditRow,
    NewJob,
    RequestRecord,
    open_store,
    prepare_database,
)

from tests._support.inprocess import STORES, database_url

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

WEBHOOK = "http://127.0.0.1:9/hook"  # never delivered here: rows stay in the outbox
TOPIC = "test.ledger"


class Crashed(Exception):
    """The database connection died in the middle of a transaction."""


@pytest.fixture(params=STORES)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApprovalService]:
    with database_url(request, tmp_path) as url:
        prepare_database(url)
        svc = ApprovalService(
            open_store(url),
            Settings(database_url=url, webhook_urls=[WEBHOOK]),
            clock=ManualClock(start=1_000_000.0),
        )
        await svc.start(scheduler=False)
        try:
            yield svc
        finally:
            await svc.stop()


def _plan(event: str, kind: str, project: str, request: Any, now: float) -> list[NewJob]:
    return [NewJob(TOPIC, {"call_id": request.call_id, "event": event}, now)]


async def _jobs(service: ApprovalService) -> list[tuple[str, str]]:
    rows = await service.store.due_jobs(2e9, stale_before=0.0, limit=1000)
    return sorted((r.payload["call_id"], r.payload["event"]) for r in rows if r.topic == TOPIC)


async def _pending(service: ApprovalService, call_id: str) -> RequestRecord:
    await service.create_function_call(
        FunctionCall(run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs={"a": 1}))
    )
    record = await service.store.get_request("function_call", call_id, "default")
    assert record is not None
    return record


def _audit(service: ApprovalService, record: RequestRecord, who: str, action: str) -> AuditRow:
    return AuditRow(
        kind=record.kind,
        call_id=record.call_id,
        at=service.clock.now(),
        actor=who,
        via="test",
        action=action,
        details={},
        project=record.project,
    )


def _rejection(service: ApprovalService, record: RequestRecord, who: str) -> tuple[str, AuditRow]:
    status = FunctionCallStatus.model_validate_json(record.status)
    status.approved = False
    status.comment = f"no, says {who}"
    return status.model_dump_json(), _audit(service, record, who, "rejected")


async def _watched(
    service: ApprovalService, call_id: str
) -> tuple[list[ServiceEvent], RequestRecord, asyncio.Task[Any]]:
    """A pending call with jobs planned, every event the service tells, and a long-poll
    waiting on the call: (events, the record as read, the waiting task)."""
    service.add_job_planner(_plan)
    events: list[ServiceEvent] = []
    service.add_listener(events.append)
    record = await _pending(service, call_id)
    waiter = asyncio.create_task(service.wait_record("function_call", call_id, 30))
    while service.waiting == 0:
        await asyncio.sleep(0.005)
    return events, record, waiter


async def test_a_commit_that_loses_its_compare_and_set_writes_and_tells_nothing(
    service: ApprovalService,
) -> None:
    events, record, waiter = await _watched(service, "lose-1")

    # Another decision lands first (here: a quorum-progress update, so the request stays
    # pending and a woken long-poll would show).
    progress = _audit(service, record, "first", "approval_recorded")
    assert await service.ledger.commit(record, record.status, progress, "updated") is not None
    await asyncio.sleep(0.05)
    outbox = await service.store.list_outbox(call_id="lose-1")
    jobs = await _jobs(service)
    trail = await service.audit_trail("lose-1")
    told = list(events)
    changes = service.change_counter

    status, audit = _rejection(service, record, "late")  # ``record`` as read before: stale
    assert await service.ledger.commit(record, status, audit, "decided") is None

    await asyncio.sleep(0.05)
    assert await service.store.list_outbox(call_id="lose-1") == outbox
    assert await _jobs(service) == jobs
    assert await service.audit_trail("lose-1") == trail
    assert events == told
    assert service.change_counter == changes
    assert not waiter.done()  # nobody was woken
    fresh = await service.store.get_request("function_call", "lose-1", "default")
    assert fresh is not None and not fresh.completed
    waiter.cancel()


async def test_a_commit_that_wins_writes_everything_in_one_transaction_then_tells(
    service: ApprovalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, record, waiter = await _watched(service, "win-1")
    store = service.store
    original = store._transaction
    transactions: list[list[str]] = []

    async def recorded(statements: Sequence[Any], **kwargs: Any) -> bool:
        transactions.append([str(sql).split("(")[0].strip() for sql, _ in statements])
        ok: bool = await original(statements, **kwargs)
        return ok

    monkeypatch.setattr(store, "_transaction", recorded)
    status, audit = _rejection(service, record, "alice")
    new = await service.ledger.commit(record, status, audit, "decided")
    monkeypatch.setattr(store, "_transaction", original)

    assert new is not None and new.completed and new.version == record.version + 1
    assert len(transactions) == 1, transactions  # one write, nothing after it
    tables = " ".join(transactions[0])
    for table in ("UPDATE fl_requests", "fl_audit", "fl_outbox", "fl_jobs"):
        assert table in tables, transactions
    rows = [r for r in await store.list_outbox(call_id="win-1") if r.type.endswith("completed")]
    assert len(rows) == 1
    assert ("win-1", "decided") in await _jobs(service)
    decided = await asyncio.wait_for(waiter, 5)
    assert decided.completed
    await asyncio.sleep(0.05)
    assert [e.type for e in events] == ["created", "decided"]
    assert events[1].webhook_event_id == rows[0].event_id


async def test_a_transaction_that_dies_leaves_no_part_of_the_change(
    service: ApprovalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection dies when the change's jobs are written: the status, its audit entry and
    its webhook rows went with them (one transaction), so the request is still pending and
    nothing announces a decision that was never stored."""
    service.add_job_planner(_plan)
    events: list[ServiceEvent] = []
    service.add_listener(events.append)
    record = await _pending(service, "die-1")
    store = service.store
    original = store._transaction

    async def dies_on_jobs(statements: Sequence[Any], **kwargs: Any) -> bool:
        if any(str(sql).startswith("INSERT INTO fl_jobs") for sql, _ in statements):
            raise Crashed  # before commit: the database rolls the transaction back
        ok: bool = await original(statements, **kwargs)
        return ok

    outbox = await store.list_outbox(call_id="die-1")
    trail = await service.audit_trail("die-1")
    monkeypatch.setattr(store, "_transaction", dies_on_jobs)
    status, audit = _rejection(service, record, "alice")
    with pytest.raises(Crashed):
        await service.ledger.commit(record, status, audit, "decided")
    monkeypatch.setattr(store, "_transaction", original)

    fresh = await store.get_request("function_call", "die-1", "default")
    assert fresh is not None and not fresh.completed and fresh.version == record.version
    assert await store.list_outbox(call_id="die-1") == outbox
    assert await service.audit_trail("die-1") == trail
    assert ("die-1", "decided") not in await _jobs(service)
    await asyncio.sleep(0.05)
    assert [e.type for e in events] == ["created"]


async def test_a_new_request_is_stored_with_its_delivery_jobs_or_not_at_all(
    service: ApprovalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.add_job_planner(_plan)
    store = service.store
    original = store._transaction

    async def dies_on_jobs(statements: Sequence[Any], **kwargs: Any) -> bool:
        if any(str(sql).startswith("INSERT INTO fl_jobs") for sql, _ in statements):
            raise Crashed
        ok: bool = await original(statements, **kwargs)
        return ok

    monkeypatch.setattr(store, "_transaction", dies_on_jobs)
    with pytest.raises(Crashed):
        await _pending(service, "new-1")
    monkeypatch.setattr(store, "_transaction", original)
    assert await store.get_request("function_call", "new-1", "default") is None
    assert await store.list_outbox(call_id="new-1") == []

    await _pending(service, "new-1")  # the agent's retry
    assert ("new-1", "created") in await _jobs(service)
    assert [r.type for r in await store.list_outbox(call_id="new-1")] == ["function_call.created"]
