"""The ApprovalService in process: a controllable clock drives expiry and scheduled jobs;
listeners, the audit trail, visibility and the change counter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from functionlayer import (
    ApprovalPolicy,
    ContactChannel,
    EmailContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
    SlackContactChannel,
)
from functionlayer_server import (
    AlreadyDecidedError,
    ApprovalService,
    InvalidDecisionError,
    InvalidRequestError,
    ManualClock,
    NotFoundError,
    ServiceEvent,
    Settings,
    User,
)
from functionlayer_server._store import open_store, prepare_database

pytestmark = pytest.mark.anyio


def _service(path: Path, clock: ManualClock) -> ApprovalService:
    url = f"sqlite:///{path / 'svc.sqlite3'}"
    prepare_database(url)
    return ApprovalService(open_store(url), Settings(database_url=url), clock=clock)


def _call(call_id: str, **spec: Any) -> FunctionCall:
    return FunctionCall(
        run_id="run", call_id=call_id, spec=FunctionCallSpec(fn="f", kwargs={"a": 1}, **spec)
    )


async def test_expiry_by_the_scheduler_with_a_manual_clock(tmp_path: Path) -> None:
    clock = ManualClock(start=1_000_000.0)
    service = _service(tmp_path, clock)
    await service.start(scheduler=False)
    events: list[ServiceEvent] = []
    service.add_listener(events.append)
    try:
        await service.create_function_call(_call("e1", timeout_seconds=60))
        waiter = asyncio.create_task(service.wait_function_call("e1", 30))
        while service.waiting == 0:  # parked on its future
            await asyncio.sleep(0.005)
        clock.advance(59)
        assert await service.scheduler.run_due() == 0
        assert not waiter.done()
        clock.advance(2)
        assert await service.scheduler.run_due() == 1
        call = await asyncio.wait_for(waiter, 5)
        assert call.status is not None
        assert call.status.expired is True and call.status.approved is False
        assert "60 seconds" in (call.status.comment or "")
        with pytest.raises(AlreadyDecidedError, match="expired"):
            await service.respond_function_call(
                "e1", FunctionCallStatus(approved=True), responder="late", via="web"
            )
        await asyncio.sleep(0.05)  # listeners run off the request path
        assert [e.type for e in events] == ["created", "decided"]
        assert events[1].request.status is not None and events[1].request.status.expired
        trail = await service.audit_trail("e1")
        assert [(a.action, a.who, a.via) for a in trail] == [
            ("created", "api", "api"),
            ("expired", "functionlayer-server", "scheduler"),
        ]
    finally:
        await service.stop()


async def test_past_deadline_counts_even_before_the_scheduler_runs(tmp_path: Path) -> None:
    clock = ManualClock(start=1_000_000.0)
    service = _service(tmp_path, clock)
    await service.start(scheduler=False)
    try:
        await service.create_human_contact(
            HumanContact(
                run_id="r", call_id="c1", spec=HumanContactSpec(msg="?", timeout_seconds=5)
            )
        )
        clock.advance(6)
        with pytest.raises(AlreadyDecidedError):
            await service.respond_human_contact("c1", response="late", responder="bob", via="web")
        contact = await service.get_human_contact("c1")
        assert contact.status is not None and contact.status.expired and contact.completed
    finally:
        await service.stop()


async def test_scheduled_jobs_survive_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(start=2_000_000.0)
    service = _service(tmp_path, clock)
    await service.start(scheduler=False)
    await service.schedule("escalate", {"call_id": "x", "step": 1}, delay=300)
    await service.stop()

    ran: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> None:
        ran.append(payload)

    service = _service(tmp_path, clock)
    service.register_job_handler("escalate", handler)
    await service.start(scheduler=False)
    try:
        assert await service.scheduler.run_due() == 0
        clock.advance(301)
        assert await service.scheduler.run_due() == 1
        assert ran == [{"call_id": "x", "step": 1}]
        assert await service.scheduler.run_due() == 0  # done once only
    finally:
        await service.stop()


async def test_listeners_see_created_updated_decided(tmp_path: Path) -> None:
    service = _service(tmp_path, ManualClock())
    await service.start(scheduler=False)
    seen: list[tuple[str, str]] = []

    async def listener(event: ServiceEvent) -> None:
        seen.append((event.type, event.request.call_id))

    def broken(event: ServiceEvent) -> None:
        raise RuntimeError("a broken channel must not break the service")

    service.add_listener(broken)
    service.add_listener(listener)
    try:
        since = service.change_counter
        await service.create_function_call(_call("l1", policy=ApprovalPolicy(approvals_required=2)))
        assert await service.wait_for_change(since, 1) > since
        await service.respond_function_call(
            "l1", FunctionCallStatus(approved=True), responder="a", via="web"
        )
        decided = await service.respond_function_call(
            "l1", FunctionCallStatus(approved=True, comment="ok"), responder="b", via="slack"
        )
        assert decided.status is not None and decided.status.approved is True
        assert decided.status.responded_by == "b" and decided.status.responded_via == "slack"
        await asyncio.sleep(0.05)
        assert seen == [("created", "l1"), ("updated", "l1"), ("decided", "l1")]
        # Nothing changes: wait_for_change times out with the same counter.
        counter = service.change_counter
        assert await service.wait_for_change(counter, 0.05) == counter
    finally:
        await service.stop()


async def test_decision_rules(tmp_path: Path) -> None:
    service = _service(tmp_path, ManualClock())
    await service.start(scheduler=False)
    try:
        await service.create_function_call(_call("d1"))
        for bad in [
            FunctionCallStatus(),
            FunctionCallStatus(approved=False),
            FunctionCallStatus(approved=False, comment="  "),
            FunctionCallStatus(approved=True, response="x"),
            FunctionCallStatus(approved=False, comment="no", edited_kwargs={"a": 2}),
            FunctionCallStatus(response="x", edited_kwargs={"a": 2}),
        ]:
            with pytest.raises(InvalidDecisionError):
                await service.respond_function_call("d1", bad, responder="u", via="web")
        with pytest.raises(NotFoundError):
            await service.respond_function_call(
                "nope", FunctionCallStatus(approved=True), responder="u", via="web"
            )
        with pytest.raises(NotFoundError):
            await service.get_function_call("d1", project="someone-else")
        call = await service.respond_function_call(
            "d1",
            FunctionCallStatus(approved=True, edited_kwargs={"a": 5}),
            responder="u",
            via="web",
        )
        assert call.status is not None and call.status.edited_kwargs == {"a": 5}
    finally:
        await service.stop()


async def test_visibility_and_users(tmp_path: Path) -> None:
    service = _service(tmp_path, ManualClock())
    await service.start(scheduler=False)
    try:
        await service.create_user("alice", "pw-a", email="Alice@Example.com")
        await service.create_user("bob", "pw-b", slack_user_id="U42")
        assert await service.authenticate_user("alice", "pw-a") == User(
            "alice", "Alice@Example.com", None
        )
        assert await service.authenticate_user("alice", "wrong") is None
        assert await service.authenticate_user("nobody", "pw-a") is None
        alice = await service.get_user("alice")
        bob = await service.get_user("bob")
        assert alice is not None and bob is not None

        await service.create_function_call(_call("open"))
        await service.create_function_call(
            _call(
                "mail",
                channel=ContactChannel(email=EmailContactChannel(address="alice@example.com")),
            )
        )
        await service.create_function_call(
            _call(
                "slack",
                channel=ContactChannel(
                    slack=SlackContactChannel(
                        channel_or_user_id="C1", allowed_responder_ids=["U42"]
                    )
                ),
            )
        )
        await service.create_function_call(_call("named", channel=ContactChannel(users=["bob"])))
        await service.create_function_call(
            _call("policy", policy=ApprovalPolicy(responders=["alice@example.com"]))
        )
        await service.create_function_call(
            _call(
                "escalation",
                policy=ApprovalPolicy(
                    mode="escalate",
                    channels=[ContactChannel(users=["carol"]), ContactChannel(users=["bob"])],
                    escalate_after_seconds=600,
                ),
            )
        )
        for_alice = {
            c.call_id for c in await service.list_function_calls(pending=True, visible_to=alice)
        }
        for_bob = {
            c.call_id for c in await service.list_function_calls(pending=True, visible_to=bob)
        }
        assert for_alice == {"open", "mail", "policy"}
        assert for_bob == {"open", "slack", "named", "escalation"}
    finally:
        await service.stop()


async def test_an_escalation_policy_that_could_never_escalate_is_refused(tmp_path: Path) -> None:
    service = _service(tmp_path, ManualClock())
    await service.start(scheduler=False)
    try:
        tiers = [ContactChannel(users=["carol"]), ContactChannel(users=["bob"])]
        for policy, message in [
            (ApprovalPolicy(mode="escalate", channels=tiers), "escalate_after_seconds"),
            (ApprovalPolicy(mode="escalate", escalate_after_seconds=60), "policy.channels"),
        ]:
            with pytest.raises(InvalidRequestError, match=message):
                await service.create_function_call(_call("e", policy=policy))
    finally:
        await service.stop()
