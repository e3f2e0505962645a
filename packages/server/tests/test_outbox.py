"""The webhook outbox in process: rows are written in the transaction of the change they
announce (and only then), claims are compare-and-set (one winner, also across PostgreSQL
connections), stale claims are taken again, and the worker retries, gives up with an audit
entry, enqueues events that came without rows, and hands back what a stop interrupted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from functionlayer import (
    ApprovalPolicy,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
)
from functionlayer_server import ApprovalService, ManualClock, ServiceEvent, Settings
from functionlayer_server._outbox import outbox_rows, webhook_event, wire_type
from functionlayer_server._store import AuditRow, OutboxRow, Store, open_store, prepare_database
from functionlayer_server._webhooks import WebhookDispatcher

from packages.server.tests.webhook_receiver import Receiver

pytestmark = pytest.mark.anyio

URL_A = "http://127.0.0.1:9/a"
URL_B = "http://127.0.0.1:9/b"


def _service(url: str, clock: Any = None, **settings: Any) -> ApprovalService:
    prepare_database(url)
    return ApprovalService(open_store(url), Settings(database_url=url, **settings), clock=clock)


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'outbox.sqlite3'}"


def _call(call_id: str, **spec: Any) -> FunctionCall:
    return FunctionCall(
        run_id="run", call_id=call_id, spec=FunctionCallSpec(fn="pay", kwargs={"n": 1}, **spec)
    )


async def _decide(service: ApprovalService, call_id: str, approved: bool) -> None:
    await service.respond_function_call(
        call_id,
        FunctionCallStatus(approved=approved, comment=None if approved else "no"),
        responder="user:alice",
        via="web",
    )


def test_event_names() -> None:
    assert webhook_event("created", "created") == "created"
    assert webhook_event("decided", "approved") == "decided"
    assert webhook_event("decided", "expired") == "expired"
    assert webhook_event("executed", "executed") == "executed"
    assert webhook_event("updated", "approval_recorded") is None
    assert wire_type("function_call", "decided") == "function_call.completed"
    assert wire_type("human_contact", "expired") == "human_contact.expired"
    assert wire_type("function_call", "executed") == "function_call.executed"


async def test_rows_are_written_with_each_change(tmp_path: Path) -> None:
    clock = ManualClock(start=1_000_000.0)
    # A URL listed twice gets one delivery.
    service = _service(_sqlite(tmp_path), clock, webhook_urls=[URL_A, URL_B, URL_A])
    await service.start(scheduler=False)
    events: list[ServiceEvent] = []
    service.add_listener(events.append)
    try:
        await service.accounts.create_person("alice")
        await service.accounts.create_person("bob")
        await service.create_function_call(_call("a"))
        await service.create_function_call(_call("a"))  # idempotent: no second event
        await _decide(service, "a", True)
        await service.create_function_call(_call("e", timeout_seconds=5))
        clock.advance(6)
        assert await service.scheduler.run_due() == 1
        # Quorum progress (an "updated" event) is not announced.
        await service.create_function_call(
            FunctionCall(
                run_id="run",
                call_id="q",
                spec=FunctionCallSpec(
                    fn="pay", kwargs={}, policy=ApprovalPolicy(approvals_required=2)
                ),
            )
        )
        await _decide(service, "q", True)
        await service.create_human_contact(
            HumanContact(run_id="run", call_id="h", spec=HumanContactSpec(msg="?"))
        )
        await service.respond_human_contact("h", response="yes", responder="alice", via="web")
        await asyncio.sleep(0.05)  # listeners run in a task

        rows = await service.store.list_outbox()
        seen = sorted({(r.type, r.call_id) for r in rows})
        assert seen == [
            ("function_call.completed", "a"),
            ("function_call.created", "a"),
            ("function_call.created", "e"),
            ("function_call.created", "q"),
            ("function_call.expired", "e"),
            ("human_contact.completed", "h"),
            ("human_contact.created", "h"),
        ]
        by_event: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_event.setdefault(row.event_id, []).append(row)
        assert all(sorted(r.url for r in group) == [URL_A, URL_B] for group in by_event.values())
        assert all(r.attempts == 0 and r.pending for r in rows)
        # The event given to listeners names the rows written with it.
        announced = {e.webhook_event_id for e in events if e.webhook_event_id is not None}
        assert announced == set(by_event)
        assert [e.type for e in events if e.webhook_event_id is None] == ["updated"]

        decided = json.loads(next(r for r in rows if r.type == "function_call.completed").payload)
        assert decided["id"] == next(r for r in rows if r.type == decided["type"]).event_id
        assert decided["action"] == "approved" and decided["project"] == "default"
        assert decided["event"]["status"]["approved"] is True
        assert decided["event"]["status"]["responded_by"] == "alice"
        expired = json.loads(next(r for r in rows if r.type == "function_call.expired").payload)
        assert expired["event"]["status"]["expired"] is True
        assert expired["action"] == "expired"
    finally:
        await service.stop()


async def test_no_rows_without_webhooks(tmp_path: Path) -> None:
    service = _service(_sqlite(tmp_path))
    await service.start(scheduler=False)
    try:
        await service.accounts.create_person("alice")
        await service.create_function_call(_call("a"))
        await _decide(service, "a", False)
        assert await service.store.list_outbox() == []
    finally:
        await service.stop()


async def test_rows_exist_only_if_the_change_does(tmp_path: Path) -> None:
    service = _service(_sqlite(tmp_path), webhook_urls=[URL_A])
    await service.start(scheduler=False)
    store = service.store
    try:
        await service.create_function_call(_call("a"))
        record = await store.get_request("function_call", "a", "default")
        assert record is not None
        audit = AuditRow("function_call", "a", 1.0, "x", "test", "approved", {})
        rows = _rows("a", "decided", "approved", 1.0)

        async def decide(version: int) -> bool:
            ok: bool = await store.update_request(
                "function_call",
                "a",
                project="default",
                status=record.status,
                completed=True,
                expected_version=version,
                audit=audit,
                outbox=rows,
            )
            return ok

        # A lost compare-and-set writes neither the change nor its rows.
        assert not await decide(record.version + 1)
        # A create that finds the call id taken writes no rows either.
        _, inserted = await store.insert_request(record, audit, outbox=rows)
        assert not inserted
        assert [r.type for r in await store.list_outbox()] == ["function_call.created"]
        assert await decide(record.version)
        assert {r.event_id for r in await store.list_outbox()} >= {rows[0].event_id}
    finally:
        await service.stop()


def _rows(call_id: str, event: str, action: str, now: float) -> list[OutboxRow]:
    """The outbox rows of one change of function call ``call_id`` for the webhook URL_A."""
    return outbox_rows(
        [URL_A],
        event=event,
        kind="function_call",
        project="default",
        request={"call_id": call_id},
        action=action,
        now=now,
    )


async def _claims(store: Store, now: float) -> None:
    await store.add_outbox(_rows("a", "created", "created", now))
    (row,) = await store.due_outbox(now)
    assert await store.claim_outbox(row, now, lease_until=now + 10)
    # The same snapshot claimed again (another worker that read it at the same time): lost.
    assert not await store.claim_outbox(row, now, lease_until=now + 10)
    assert await store.due_outbox(now + 9) == []  # held while the claim is live
    (stale,) = await store.due_outbox(now + 11)  # the claimer died: due again
    assert stale.attempts == 1
    assert await store.claim_outbox(stale, now + 11, lease_until=now + 21)
    # The first claimer, back late, cannot overwrite the new claim's row.
    assert not await store.outbox_retry(row.id, 1, next_attempt_at=now, error="late")
    assert await store.outbox_retry(row.id, 2, next_attempt_at=now + 12, error="HTTP 500")
    (again,) = await store.due_outbox(now + 12)
    assert again.attempts == 2 and again.last_error == "HTTP 500"
    await store.outbox_delivered(row.id, now + 13)
    assert await store.due_outbox(now + 1000) == []
    assert await store.next_outbox_due() is None


async def test_claims_are_compare_and_set_sqlite(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    prepare_database(url)
    store = open_store(url)
    await store.open()
    try:
        await _claims(store, 1000.0)
    finally:
        await store.close()


async def test_claims_across_postgres_connections(postgres_url: str) -> None:
    prepare_database(postgres_url)
    stores = [open_store(postgres_url) for _ in range(3)]
    for store in stores:
        await store.open()
    try:
        await _claims(stores[0], 1000.0)
        now = 5000.0
        for i in range(30):
            await stores[0].add_outbox(_rows(f"r{i}", "created", "created", now))
        # Three "processes" see the same due rows and race for each: one winner per row.
        seen = [await s.due_outbox(now) for s in stores]
        results = await asyncio.gather(
            *(
                s.claim_outbox(row, now, lease_until=now + 10)
                for s, rows in zip(stores, seen, strict=True)
                for row in rows
            )
        )
        assert sum(results) == 30
        assert await stores[1].due_outbox(now) == []
    finally:
        for store in stores:
            await store.close()


async def _run_worker(
    tmp_path: Path, receiver: Receiver, **settings: Any
) -> tuple[ApprovalService, WebhookDispatcher]:
    service = _service(
        _sqlite(tmp_path),
        webhook_urls=[receiver.url],
        webhook_secret="s",
        webhook_retry_base_seconds=0.01,
        scheduler_interval_seconds=0.2,
        **settings,
    )
    await service.start(scheduler=False)
    dispatcher = WebhookDispatcher(service)
    service.add_listener(dispatcher.on_event)
    await dispatcher.start()
    return service, dispatcher


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_gives_up_after_max_attempts_and_audits(tmp_path: Path) -> None:
    receiver = Receiver(lambda index, body: (503, 0.0))
    service, dispatcher = await _run_worker(tmp_path, receiver, webhook_max_attempts=3)
    try:
        await service.create_function_call(_call("a"))

        async def failed() -> bool:
            return all(r.failed_at is not None for r in await service.store.list_outbox())

        await _until(failed)
        (row,) = await service.store.list_outbox()
        assert row.attempts == 3 and row.delivered_at is None and row.last_error == "HTTP 503"
        assert len(receiver.deliveries) == 3
        assert {d.id for d in receiver.deliveries} == {row.event_id}
        trail = await service.audit_trail("a")
        assert [e.action for e in trail] == ["created", "webhook_failed"]
        assert trail[1].via == "webhook"
        assert trail[1].details == {
            "event_id": row.event_id,
            "type": "function_call.created",
            "url": receiver.url,
            "attempts": 3,
            "error": "HTTP 503",
        }
    finally:
        await dispatcher.stop()
        await service.stop()
        receiver.close()


async def test_backoff_doubles_up_to_the_cap(tmp_path: Path) -> None:
    service = _service(
        _sqlite(tmp_path),
        webhook_retry_base_seconds=0.5,
        webhook_retry_max_seconds=3,
        webhook_timeout_seconds=4,
    )
    dispatcher = WebhookDispatcher(service)
    assert [dispatcher.backoff(n) for n in (1, 2, 3, 4, 5, 100)] == [0.5, 1, 2, 3, 3, 3]
    assert dispatcher.lease_seconds > 4  # a live attempt never looks stale


async def test_an_event_without_rows_is_enqueued_by_the_dispatcher(tmp_path: Path) -> None:
    receiver = Receiver()
    service, dispatcher = await _run_worker(tmp_path, receiver)
    try:
        call, _ = await service.create_function_call(_call("x"))
        # An emitter that wrote no rows (a new event type, say): announced all the same.
        await dispatcher.on_event(
            ServiceEvent(type="executed", kind="function_call", project="default", request=call)  # type: ignore[arg-type]
        )
        assert await asyncio.to_thread(
            receiver.wait_for,
            lambda ds: (
                {d.type for d in ds if d.status == 200}
                == {"function_call.created", "function_call.executed"}
            ),
            10,
        )
        executed = next(d for d in receiver.deliveries if d.type == "function_call.executed")
        assert executed.signed_by("s") and executed.payload["event"]["call_id"] == "x"
    finally:
        await dispatcher.stop()
        await service.stop()
        receiver.close()


async def test_stop_hands_back_an_interrupted_attempt(tmp_path: Path) -> None:
    receiver = Receiver(lambda index, body: (200, 3.0 if index == 0 else 0.0))
    service, dispatcher = await _run_worker(tmp_path, receiver, webhook_timeout_seconds=30)
    try:
        await service.create_function_call(_call("a"))

        async def in_flight() -> bool:
            return bool(await service.store.list_outbox()) and receiver._received > 0

        await _until(in_flight)
        await dispatcher.stop()
        (row,) = await service.store.list_outbox()
        # Due again at once (not after the 60 s lease), for whichever process runs next.
        assert row.pending and row.attempts == 1
        assert row.next_attempt_at <= service.clock.now()
        assert row.last_error == "server stopped during the attempt"
    finally:
        await dispatcher.stop()
        await service.stop()
        receiver.close()
