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
)
from functionlayer_server._errors import ForbiddenError
from functionlayer_server._store import open_store, prepare_database

pytestmark = pytest.mark.anyio


def _service(path: Path, clock: ManualClock, **settings: Any) -> ApprovalService:
    url = f"sqlite:///{path / 'svc.sqlite3'}"
    prepare_database(url)
    return ApprovalService(open_store(url), Settings(database_url=url, **settings), clock=clock)


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
        await service.accounts.create_person("late")
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
        await service.accounts.create_person("bob")
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
        await service.accounts.create_person("a")
        await service.accounts.create_person("b")
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
        await service.accounts.create_person("u")
        await service.create_function_call(_call("d1"))
        # Only a person of the directory decides: an unknown name, an agent's name or an
        # address nobody owns is refused (403), and the call stays pending.
        for stranger in ["nobody", "token:test-agent", "email:x@example.com", "slack:U0NONE"]:
            with pytest.raises(ForbiddenError):
                await service.respond_function_call(
                    "d1", FunctionCallStatus(approved=True), responder=stranger, via="web"
                )
        pending = await service.get_function_call("d1")
        assert pending.status is not None and pending.status.approved is None
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
        assert call.status.responded_by == "u" and call.status.responded_via == "web"
    finally:
        await service.stop()


async def test_visibility_and_users(tmp_path: Path) -> None:
    # The operator's policy lets requests go to the Slack channel C1 (a channel names nobody).
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text('[projects.default]\nslack_channels = ["C1"]\n')
    service = _service(tmp_path, ManualClock(), policy_file=str(policy_file))
    await service.start(scheduler=False)
    try:
        await service.create_user("alice", "pw-a-long-enough", email="Alice@Example.com")
        await service.create_user("bob", "pw-b-long-enough", slack_user_id="U42")
        await service.accounts.create_person("carol")
        await service.accounts.create_person("zed", projects=["elsewhere"])
        with pytest.raises(InvalidRequestError, match="12 characters"):
            await service.create_user("dave", "short")
        alice = await service.accounts.login("alice", "pw-a-long-enough", "127.0.0.1")
        assert alice is not None and alice.name == "alice"
        assert alice.emails == frozenset({"alice@example.com"})
        assert alice.projects == frozenset({"default"})
        assert await service.accounts.login("alice", "wrong-password", "127.0.0.1") is None
        assert await service.accounts.login("nobody", "pw-a-long-enough", "127.0.0.1") is None
        assert await service.accounts.login("carol", "", "127.0.0.1") is None  # no inbox login
        bob = await service.accounts.get_person("bob")
        carol = await service.accounts.get_person("carol")
        zed = await service.accounts.get_person("zed")
        assert bob is not None and bob.slack_ids == frozenset({"U42"})
        assert carol is not None and zed is not None

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

        async def visible(person: Any) -> set[str]:
            return {
                c.call_id
                for c in await service.list_function_calls(pending=True, visible_to=person)
            }

        assert await visible(alice) == {"open", "mail", "policy"}
        assert await visible(bob) == {"open", "slack", "named", "escalation"}
        assert await visible(carol) == {"open", "escalation"}
        assert await visible(zed) == set()  # another project's member sees none of these
        mail = await service.get_function_call("mail")
        assert await service.may_see(mail, alice, "default")
        assert not await service.may_see(mail, bob, "default")
        page, total = await service.inbox_page("function_call", bob, pending=True, limit=2)
        assert total == 4 and len(page) == 2
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
