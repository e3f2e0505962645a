"""Webhooks reach a real local receiver, signed (HMAC-SHA256 over "<timestamp>.<body>"), with a
delivery id stable across retries, retried after a failure, without slowing down the answer
that triggered them; and none is lost when the server is killed (-9) again and again while the
receiver fails and stalls."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import threading
import time
from typing import Any

import httpx
import pytest
from functionlayer_server import verify_webhook_signature
from functionlayer_server._store import OutboxRow, RequestRecord, open_store

from packages.server.tests.webhook_receiver import Delivery, Receiver
from tests._support.servers import ServerFactory

SECRET = "whsec-test-123"


def _accepted_types(deliveries: list[Delivery]) -> set[tuple[str, str]]:
    return {(d.type, d.call_id) for d in deliveries if d.status == 200}


def test_signed_webhook_with_retry(server_factory: ServerFactory) -> None:
    # The first delivery of wh-1's created event stalls 1.5 s, then fails with 500 (chosen by
    # its type, not its arrival order: on a loaded machine the decided event may come first).
    failed_once: list[bool] = []

    def plan(index: int, body: bytes) -> tuple[int, float]:
        if not failed_once and json.loads(body).get("type") == "function_call.created":
            failed_once.append(True)
            return 500, 1.5
        return 200, 0.0

    receiver = Receiver(plan)
    try:
        srv = server_factory(
            env={
                "FUNCTIONLAYER_SERVER_WEBHOOK_URLS": receiver.url,
                "FUNCTIONLAYER_SERVER_WEBHOOK_SECRET": SECRET,
            }
        )
        client = srv.client()
        client.post(
            "/function_calls",
            json={"run_id": "r", "call_id": "wh-1", "spec": {"fn": "pay", "kwargs": {"n": 1}}},
        )
        human = srv.approver_client()
        started = time.monotonic()
        answer = human.post(
            "/agent/function_calls/wh-1/respond", json={"approved": False, "comment": "no"}
        )
        assert answer.status_code == 200
        assert time.monotonic() - started < 1.0, "the answer waited for the webhook"
        assert receiver.wait_for(
            lambda ds: (
                {("function_call.created", "wh-1"), ("function_call.completed", "wh-1")}
                <= _accepted_types(ds)
            ),
            20,
        ), "no successful delivery"

        created = [d for d in receiver.deliveries if d.type == "function_call.created"]
        assert [d.status for d in created] == [500, 200]
        # A retry is the same delivery: same id, same body (signed again, with a new timestamp).
        assert created[0].id == created[1].id
        assert created[0].body == created[1].body
        completed = [d for d in receiver.deliveries if d.type == "function_call.completed"]
        assert [d.status for d in completed] == [200]
        assert completed[0].id != created[0].id

        headers, body = completed[0].headers, completed[0].body
        timestamp = headers["functionlayer-timestamp"]
        expected = (
            "v1="
            + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        )
        assert hmac.compare_digest(headers["functionlayer-signature"], expected)
        assert abs(time.time() - int(timestamp)) < 60
        assert verify_webhook_signature(SECRET, body, timestamp, headers["functionlayer-signature"])
        assert not verify_webhook_signature(
            "other-secret", body, timestamp, headers["functionlayer-signature"]
        )
        assert not verify_webhook_signature(
            SECRET, body + b" ", timestamp, headers["functionlayer-signature"]
        )
        stale = str(int(timestamp) - 3600)
        assert not verify_webhook_signature(SECRET, body, stale, headers["functionlayer-signature"])

        payload = json.loads(body)
        assert payload["type"] == "function_call.completed"
        assert payload["id"] == headers["x-functionlayer-delivery"]
        assert headers["x-functionlayer-event"] == "function_call.completed"
        assert headers["functionlayer-event"] == "function_call.completed"
        assert payload["action"] == "rejected" and payload["project"] == "default"
        assert payload["event"]["call_id"] == "wh-1"
        assert payload["event"]["status"]["approved"] is False
        assert payload["event"]["status"]["comment"] == "no"
        assert payload["event"]["status"]["responded_by"] == "approver"
        assert json.loads(created[1].body)["event"]["status"]["approved"] is None

        client.post(
            "/contact_requests", json={"run_id": "r", "call_id": "wh-c", "spec": {"msg": "?"}}
        )
        human.post("/agent/human_contacts/wh-c/respond", json={"response": "yes"})
        assert receiver.wait_for(
            lambda ds: (
                {("human_contact.created", "wh-c"), ("human_contact.completed", "wh-c")}
                <= _accepted_types(ds)
            ),
            20,
        )
        last = next(d for d in receiver.deliveries if d.type == "human_contact.completed")
        assert last.payload["type"] == "human_contact.completed"
        assert last.payload["event"]["status"]["response"] == "yes"
    finally:
        receiver.close()


# -- kill -9 ---------------------------------------------------------------------------------


def _chaos(seed: int) -> Any:
    """~30 % of deliveries fail with 500, ~5 % stall past the sender's timeout (then 500)."""
    rng = random.Random(seed)

    def plan(index: int, body: bytes) -> tuple[int, float]:
        roll = rng.random()
        if roll < 0.30:
            return 500, 0.0
        if roll < 0.35:
            return 500, 1.5
        return 200, 0.0

    return plan


async def _read_state(url: str) -> tuple[list[RequestRecord], list[OutboxRow]]:
    store = open_store(url)
    await store.open()
    try:
        requests: list[RequestRecord] = []
        for kind in ("function_call", "human_contact"):
            requests += await store.list_requests(kind, limit=10_000)
        return requests, await store.list_outbox(limit=100_000)
    finally:
        await store.close()


def _expected_events(requests: list[RequestRecord]) -> set[tuple[str, str]]:
    """What the stored requests say must have been announced: every request was created, and
    every completed one was decided or expired."""
    events = set()
    for record in requests:
        events.add((f"{record.kind}.created", record.call_id))
        if record.completed:
            expired = json.loads(record.status).get("expired")
            events.add((f"{record.kind}.{'expired' if expired else 'completed'}", record.call_id))
    return events


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_webhook_lost_across_kill_9(
    backend: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    cycles = 10
    database_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    rng = random.Random(f"webhooks-kill-9-{backend}")
    receiver = Receiver(_chaos(7))
    try:
        srv = server_factory(
            database_url,
            env={
                "FUNCTIONLAYER_SERVER_WEBHOOK_URLS": receiver.url,
                "FUNCTIONLAYER_SERVER_WEBHOOK_SECRET": SECRET,
                "FUNCTIONLAYER_SERVER_WEBHOOK_MAX_ATTEMPTS": "1000",
                "FUNCTIONLAYER_SERVER_WEBHOOK_TIMEOUT_SECONDS": "1",
                "FUNCTIONLAYER_SERVER_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
                "FUNCTIONLAYER_SERVER_WEBHOOK_RETRY_MAX_SECONDS": "0.4",
                "FUNCTIONLAYER_SERVER_SCHEDULER_INTERVAL_SECONDS": "0.2",
            },
        )
        approver = srv.approver_token
        acknowledged: set[tuple[str, str]] = set()
        for cycle in range(cycles):
            # kill -9 at a random moment: while requests are created and decided, or just
            # after, while their webhooks are being delivered.
            killer = threading.Timer(rng.uniform(0.05, 0.8), srv.kill)
            killer.start()
            agent = httpx.Client(base_url=srv.api_base, headers=srv.headers(), timeout=3)
            human = httpx.Client(base_url=srv.api_base, headers=srv.headers(approver), timeout=3)
            try:
                for i in range(8):
                    call_id = f"c{cycle}-{i}"
                    try:
                        if i == 7:
                            r = agent.post(
                                "/contact_requests",
                                json={"run_id": "r", "call_id": call_id, "spec": {"msg": "?"}},
                            )
                            if r.status_code in (200, 201):
                                acknowledged.add(("human_contact.created", call_id))
                            r = human.post(
                                f"/agent/human_contacts/{call_id}/respond",
                                json={"response": "ok"},
                            )
                            if r.status_code == 200:
                                acknowledged.add(("human_contact.completed", call_id))
                            continue
                        spec: dict[str, Any] = {"fn": "pay", "kwargs": {"cycle": cycle, "i": i}}
                        if i % 4 == 3:
                            spec["timeout_seconds"] = 0.3  # expires (maybe after a restart)
                        r = agent.post(
                            "/function_calls",
                            json={"run_id": "r", "call_id": call_id, "spec": spec},
                        )
                        if r.status_code in (200, 201):
                            acknowledged.add(("function_call.created", call_id))
                        if i % 4 in (0, 1):
                            r = human.post(
                                f"/agent/function_calls/{call_id}/respond",
                                json={"approved": i % 4 == 0, "comment": "no" if i % 4 else None},
                            )
                            if r.status_code == 200:
                                acknowledged.add(("function_call.completed", call_id))
                    except httpx.HTTPError:
                        pass  # the server is gone: what it committed must still be announced
            finally:
                agent.close()
                human.close()
            killer.join()
            assert srv.proc is None  # it was killed
            srv.start()

        assert len(acknowledged) >= 20, f"too few requests got through: {sorted(acknowledged)}"
        # The last requests expire (0.3 s); then every event must arrive.
        deadline = time.monotonic() + 15
        while True:
            requests, _ = asyncio.run(_read_state(srv.database_url))
            if all(r.completed or r.expires_at is None for r in requests):
                break
            assert time.monotonic() < deadline, "requests did not expire"
            time.sleep(0.2)
        expected = _expected_events(requests)
        assert acknowledged <= expected
        assert receiver.wait_for(lambda ds: expected <= _accepted_types(ds), 30), (
            f"lost: {sorted(expected - _accepted_types(receiver.deliveries))}"
        )

        accepted = receiver.accepted()
        by_id: dict[str, list[Delivery]] = {}
        for delivery in receiver.deliveries:
            by_id.setdefault(delivery.id, []).append(delivery)
        # De-duplicated by delivery id: exactly the expected events, each under one id.
        unique = {d.id: (d.type, d.call_id) for d in accepted}
        assert sorted(unique.values()) == sorted(expected)
        assert set(by_id) == set(unique)
        for all_attempts in by_id.values():
            attempts = [d for d in all_attempts if d.status != 400]  # 400: cut short by kill
            assert len({d.body for d in attempts}) == 1  # retries resend the same body
            assert all(d.signed_by(SECRET) for d in attempts)
            assert all(d.payload["id"] == d.id for d in attempts)
        assert any(len(attempts) > 1 for attempts in by_id.values()), "nothing was retried"

        # Every outbox row is recorded delivered (an accepted delivery may still be recording).
        deadline = time.monotonic() + 10
        while True:
            _, outbox = asyncio.run(_read_state(srv.database_url))
            if all(r.delivered_at is not None for r in outbox) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert {r.event_id for r in outbox} == set(unique)
        assert all(r.delivered_at is not None and r.failed_at is None for r in outbox)
    finally:
        receiver.close()
