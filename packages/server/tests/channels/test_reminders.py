"""Operator reminders and escalation before expiry (``remind_after_seconds``,
``escalate_after_seconds``/``escalate_to`` in the policy file), on SQLite and PostgreSQL, with
a controllable clock: the jobs are stored with the request, fire once while it is pending,
go through the real Slack channel (the Web API is the double) and are audited; an expired
request reaches the LLM as "timed out, no one answered", not as a rejection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer import FunctionLayer, HttpBackend
from functionlayer._feedback import expired_message, rejection_message
from functionlayer.models import ContactChannel, FunctionCall, FunctionCallSpec
from functionlayer.models import SlackContactChannel as Slack
from functionlayer_server._app import create_app
from functionlayer_server._channels._dispatch import REMIND_TOPIC
from functionlayer_server._policy import OperatorPolicy
from functionlayer_server._scheduler import ManualClock
from functionlayer_server._service import ApprovalService

from packages.server.tests.channels._app import slack_settings
from packages.server.tests.channels.conftest import SIGNING_SECRET
from packages.server.tests.channels.slack_double import (
    SlackDouble,
    block_actions,
    interaction_body,
    slack_headers,
)
from tests._support.inprocess import STORES, database_url

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

POLICY = """
[projects.default]
slack_channels = ["C-TEAM"]
remind_after_seconds = 60
escalate_after_seconds = 120
escalate_to = [{ slack = { channel_or_user_id = "C-BOSS", context_about_channel_or_user = "the on-call lead" } }]
"""


@pytest.fixture(params=STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request, tmp_path) as url:
        yield url


class Server:
    def __init__(self, app: Any, http: httpx.AsyncClient, clock: ManualClock) -> None:
        self.app = app
        self.service: ApprovalService = app.state.service
        self.http = http
        self.clock = clock

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.service.scheduler.run_due()

    async def actions(self, call_id: str) -> list[str]:
        return [e.action for e in await self.service.audit_trail(call_id)]

    async def click(self, payload: dict[str, Any]) -> httpx.Response:
        body = interaction_body(payload)
        return await self.http.post(
            "/slack/interactions", content=body, headers=slack_headers(body, SIGNING_SECRET)
        )


@asynccontextmanager
async def running(url: str, directory: Path, double: SlackDouble) -> AsyncIterator[Server]:
    clock = ManualClock()
    settings = slack_settings(directory, double, policy=POLICY, database_url=url, public_url=None)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        await app.state.service.accounts.create_person("lead", slack_ids=["U0LEAD"])
        await app.state.service.accounts.create_person("boss", slack_ids=["U0BOSS"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Server(app, http, clock)


@pytest.fixture
async def server(db_url: str, tmp_path: Path, slack_double: SlackDouble) -> AsyncIterator[Server]:
    async with running(db_url, tmp_path, slack_double) as srv:
        yield srv


async def create(server: Server, call_id: str, timeout: float | None = None) -> None:
    call = FunctionCall(
        run_id="r",
        call_id=call_id,
        spec=FunctionCallSpec(
            fn="deploy",
            kwargs={"v": 1},
            channel=ContactChannel(slack=Slack(channel_or_user_id="C-TEAM")),
            timeout_seconds=timeout,
        ),
    )
    _, created = await server.service.create_function_call(call)
    assert created


def posts_to(double: SlackDouble, channel: str) -> list[Any]:
    return [c for c in double.calls_to("chat.postMessage") if c.params.get("channel") == channel]


async def settle() -> None:
    await asyncio.sleep(0.3)


def test_policy_file_reminder_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="go together"):
        OperatorPolicy.from_mapping({"default": {"escalate_after_seconds": 5}})
    with pytest.raises(ValueError, match="positive number"):
        OperatorPolicy.from_mapping({"default": {"remind_after_seconds": 0}})
    with pytest.raises(ValueError, match="naming no channel"):
        OperatorPolicy.from_mapping({"default": {"escalate_after_seconds": 5, "escalate_to": [{}]}})


async def test_jobs_are_stored_with_the_request(server: Server) -> None:
    """Planned in the creation's transaction: the jobs are in the store as soon as the
    request is, each due its delay after creation."""
    await create(server, "rem-jobs")
    now = server.clock.now()
    jobs = [
        j
        for j in await server.service.store.due_jobs(now + 1000, stale_before=now - 300)
        if j.topic == REMIND_TOPIC
    ]
    assert sorted((j.payload["what"], round(j.due_at - now)) for j in jobs) == [
        ("escalate", 120),
        ("remind", 60),
    ]


async def test_reminder_then_escalation_then_the_escalation_target_decides(
    server: Server, slack_double: SlackDouble
) -> None:
    await create(server, "rem-1")
    await slack_double.await_for("chat.postMessage", 1)
    await server.advance(59)
    await settle()
    assert len(posts_to(slack_double, "C-TEAM")) == 1  # not before the delay
    assert "reminded" not in await server.actions("rem-1")

    await server.advance(2)
    await slack_double.await_for("chat.postMessage", 2)
    assert len(posts_to(slack_double, "C-TEAM")) == 2  # the same target, again
    reminded = [e for e in await server.service.audit_trail("rem-1") if e.action == "reminded"]
    assert len(reminded) == 1 and reminded[0].details["to"] == ["Slack (C-TEAM)"]
    assert not posts_to(slack_double, "C-BOSS")

    await server.advance(60)
    await slack_double.await_for("chat.postMessage", 3)
    boss_message = posts_to(slack_double, "C-BOSS")
    assert len(boss_message) == 1
    escalated = [e for e in await server.service.audit_trail("rem-1") if e.action == "escalated"]
    assert len(escalated) == 1
    assert escalated[0].details == {"source": "operator", "to": ["Slack (the on-call lead)"]}

    # The escalation target answers on the escalated message, as a person of the directory.
    answer = await server.click(block_actions(boss_message[0], "U0BOSS", "fl_approve"))
    assert answer.status_code == 200
    call = await server.service.get_function_call("rem-1")
    assert call.status is not None and call.status.approved is True
    assert call.status.responded_by == "boss"
    # Each fires once: nothing more later.
    await server.advance(3600)
    await settle()
    assert len(slack_double.calls_to("chat.postMessage")) == 3
    assert (await server.actions("rem-1")).count("reminded") == 1


async def test_nothing_is_sent_once_decided(server: Server, slack_double: SlackDouble) -> None:
    await create(server, "rem-2")
    first = await slack_double.await_for("chat.postMessage", 1)
    await server.click(block_actions(first[0], "U0LEAD", "fl_approve"))
    await server.advance(500)
    await settle()
    actions = await server.actions("rem-2")
    assert "reminded" not in actions and "escalated" not in actions
    assert len(slack_double.calls_to("chat.postMessage")) == 1


async def test_steps_after_the_deadline_are_not_planned_and_expiry_is_audited(
    server: Server, slack_double: SlackDouble
) -> None:
    await create(server, "rem-3", timeout=90)  # reminder at 60 fits, escalation at 120 not
    await slack_double.await_for("chat.postMessage", 1)
    await server.advance(61)
    await slack_double.await_for("chat.postMessage", 2)
    await server.advance(30)
    await settle()
    actions = await server.actions("rem-3")
    assert actions.count("reminded") == 1 and "escalated" not in actions
    assert "expired" in actions and "rejected" not in actions
    call = await server.service.get_function_call("rem-3")
    assert call.status is not None and call.status.expired and call.status.responded_by
    await server.advance(600)
    await settle()
    assert not posts_to(slack_double, "C-BOSS")


async def test_the_llm_is_told_it_timed_out_not_that_it_was_rejected(server: Server) -> None:
    """The agent waits through the real client; the server's scheduler expires the request
    (the service clock moves): the tool result says timed out, no one answered."""
    token = await server.service.create_token("agent")
    backend = HttpBackend(
        "http://test/functionlayer/v1",
        token,
        long_poll=2,
        async_transport=httpx.ASGITransport(app=server.app),
    )
    fl = FunctionLayer(backend=backend)
    ran: list[int] = []

    @fl.require_approval(ContactChannel(slack=Slack(channel_or_user_id="C-TEAM")), timeout=30)
    async def deploy(version: int) -> str:
        ran.append(version)
        return "deployed"

    task = asyncio.ensure_future(deploy(7))
    for _ in range(100):
        if await server.service.list_function_calls(pending=True):
            break
        await asyncio.sleep(0.05)
    await server.advance(31)
    result = await asyncio.wait_for(task, 20)
    assert result == expired_message("deploy", 30)
    assert "timed out, no one answered" in result and "not a rejection" in result
    assert result != rejection_message("deploy", None)
    assert ran == []
    (call,) = await server.service.list_function_calls()
    trail = await server.service.audit_trail(call.call_id)
    assert [e.action for e in trail if e.action in ("expired", "rejected")] == ["expired"]
    assert json.loads(json.dumps(trail[-1].to_json()))["action"] in ("expired", "delivered")


async def test_a_failed_reminder_is_retried_once_and_never_sent_twice(
    server: Server, slack_double: SlackDouble
) -> None:
    """The Slack API refuses the reminder's first post: the reminder is retried with backoff
    through the job queue (not lost), and once it reached the target it is not sent again,
    even when its job runs once more."""
    await create(server, "rem-retry")
    await slack_double.await_for("chat.postMessage", 1)
    slack_double.fail["chat.postMessage"] = ["ratelimited"]
    await server.advance(61)
    await slack_double.await_for("chat.postMessage", 2)  # the refused attempt
    await settle()
    trail = await server.service.audit_trail("rem-retry")
    failed = [e for e in trail if e.action == "delivery_failed"]
    assert len(failed) == 1

    await server.advance(6)  # the first retry is due 5 s later
    await settle()
    ok_posts = [c for c in posts_to(slack_double, "C-TEAM") if c.response.get("ok")]
    assert len(ok_posts) == 2  # the request, then the reminder (retried)
    assert failed[0].details.get("reminder") == "remind" and failed[0].details["attempt"] == 1
    trail = await server.service.audit_trail("rem-retry")
    reminder_deliveries = [
        e for e in trail if e.action == "delivered" and e.details.get("reminder") == "remind"
    ]
    assert len(reminder_deliveries) == 1
    assert [e.action for e in trail].count("reminded") == 1

    # The retry's job runs again (a second process, a re-run after a crash): nothing is sent.
    payload = {"kind": "function_call", "call_id": "rem-retry", "project": "default"}
    await server.app.state.channels.run_reminder(payload | {"what": "remind", "attempt": 1})
    await server.advance(30)
    await settle()
    assert len(posts_to(slack_double, "C-TEAM")) == 3
    assert [e.action for e in await server.service.audit_trail("rem-retry")].count("reminded") == 1
