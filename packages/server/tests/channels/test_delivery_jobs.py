"""The channels' jobs are planned from the request (a pure function) and stored by the very
transaction that makes the change: a created request has its delivery jobs (every escalation
tier, each due on time), a decision its update job, and a change that is not stored (an
idempotent repeat, a lost compare-and-set) stores none. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from functionlayer import (
    ApprovalPolicy,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    SlackContactChannel,
)
from functionlayer_server import ApprovalService, ManualClock, Settings
from functionlayer_server._channels import build_dispatcher
from functionlayer_server._channels._dispatch import DELIVER_TOPIC, UPDATE_TOPIC, delivery_jobs
from functionlayer_server._store import AuditRow, NewJob, open_store, prepare_database

from tests._support.servers import fresh_postgres_database

pytestmark = pytest.mark.anyio

NOW = 1_000_000.0


def slack(channel: str) -> ContactChannel:
    return ContactChannel(slack=SlackContactChannel(channel_or_user_id=channel))


def call(call_id: str, **spec: Any) -> FunctionCall:
    return FunctionCall(
        run_id="run", call_id=call_id, spec=FunctionCallSpec(fn="pay", kwargs={"n": 1}, **spec)
    )


ESCALATING = {
    "channel": slack("C-A"),
    "policy": ApprovalPolicy(
        mode="escalate",
        channels=[slack("C-B"), slack("C-C"), slack("C-D")],
        escalate_after_seconds=60,
    ),
}


def test_the_plan() -> None:
    fc = "function_call"
    one = call("one", channel=slack("C-A"))
    assert delivery_jobs("created", fc, "default", one, NOW) == [
        NewJob(DELIVER_TOPIC, {"kind": fc, "call_id": "one", "project": "default", "tier": 0}, NOW)
    ]
    assert delivery_jobs("decided", fc, "default", one, NOW) == [
        NewJob(UPDATE_TOPIC, {"kind": fc, "call_id": "one", "project": "default"}, NOW)
    ]
    assert delivery_jobs("updated", fc, "default", one, NOW) == []  # quorum progress
    assert delivery_jobs("executed", fc, "default", one, NOW) == []
    # Escalation: tier 0 is the channel and the first policy channel; then one a minute.
    tiers = delivery_jobs("created", fc, "default", call("esc", **ESCALATING), NOW)
    assert [(j.payload["tier"], j.due_at) for j in tiers] == [
        (0, NOW),
        (1, NOW + 60),
        (2, NOW + 120),
    ]
    # Nowhere to deliver: nothing to run, nothing to update.
    assert delivery_jobs("created", fc, "default", call("none"), NOW) == []
    assert delivery_jobs("decided", fc, "default", call("none"), NOW) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    else:
        with fresh_postgres_database() as pg:
            yield pg


@pytest.fixture
async def service(url: str, tmp_path: Path) -> AsyncIterator[ApprovalService]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[projects.default]\nslack_channels = ["C-A", "C-B", "C-C", "C-D"]\n')
    settings = Settings(database_url=url, policy_file=str(policy))
    prepare_database(url)
    service = ApprovalService(open_store(url), settings, clock=ManualClock(start=NOW))
    build_dispatcher(service, settings)  # no channel configured: only the plan matters here
    await service.start(scheduler=False)
    await service.accounts.create_person("alice")
    try:
        yield service
    finally:
        await service.stop()


async def jobs(service: ApprovalService) -> list[tuple[str, str, Any, float]]:
    rows = await service.store.due_jobs(NOW + 10_000, stale_before=0.0)
    return sorted(
        (j.topic, j.payload["call_id"], j.payload.get("tier"), j.due_at - NOW) for j in rows
    )


async def test_jobs_are_stored_with_the_change(service: ApprovalService) -> None:
    await service.create_function_call(call("esc", **ESCALATING))
    created = [
        (DELIVER_TOPIC, "esc", 0, 0.0),
        (DELIVER_TOPIC, "esc", 1, 60.0),
        (DELIVER_TOPIC, "esc", 2, 120.0),
    ]
    assert await jobs(service) == created
    await service.create_function_call(call("esc", **ESCALATING))  # a retry: not a change
    await service.create_function_call(call("quiet"))  # nowhere to deliver
    assert await jobs(service) == created

    await service.respond_function_call(
        "esc", FunctionCallStatus(approved=True), responder="user:alice", via="web"
    )
    assert await jobs(service) == [*created, (UPDATE_TOPIC, "esc", None, 0.0)]


async def test_a_change_not_stored_stores_no_jobs(service: ApprovalService) -> None:
    store = service.store
    record, created = await service.create_record(
        "function_call", call("cas", channel=slack("C-A"))
    )
    assert created
    before = await jobs(service)
    job = NewJob(UPDATE_TOPIC, {"kind": "function_call", "call_id": "cas"}, NOW)
    audit = AuditRow("function_call", "cas", NOW, "alice", "web", "approved", {})
    # A compare-and-set that loses (someone changed the request first) writes nothing.
    assert not await store.update_request(
        "function_call",
        "cas",
        project="default",
        status=record.status,
        completed=True,
        expected_version=record.version + 1,
        audit=audit,
        jobs=[job],
    )
    # Nor does an insert under a call id that exists.
    _, inserted = await store.insert_request(record, audit, jobs=[job])
    assert not inserted
    assert await jobs(service) == before
    # The same compare-and-set that wins writes its job.
    assert await store.update_request(
        "function_call",
        "cas",
        project="default",
        status=record.status,
        completed=True,
        expected_version=record.version,
        audit=audit,
        jobs=[job],
    )
    assert (UPDATE_TOPIC, "cas", None, 0.0) in await jobs(service)
