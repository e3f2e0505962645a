"""Routing with a controllable clock: any_of, escalation tiers, quorum and expiry, on an
in-process server (real store, scheduler and Slack channel; the Slack Web API is the double);
and escalation across a kill -9 restart of the real server process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer.models import (
    ApprovalPolicy,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    SlackContactChannel,
)
from functionlayer_server._app import create_app
from functionlayer_server._scheduler import ManualClock
from functionlayer_server._service import ApprovalService

from packages.server.tests.channels._app import slack_settings
from packages.server.tests.channels.conftest import SIGNING_SECRET, slack_env
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    block_actions,
    interaction_body,
    slack_headers,
    view_submission,
)
from tests._support.servers import ServerFactory

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


class Server:
    def __init__(self, service: ApprovalService, http: httpx.AsyncClient, clock: ManualClock):
        self.service = service
        self.http = http
        self.clock = clock

    async def click(self, payload: dict[str, Any]) -> httpx.Response:
        body = interaction_body(payload)
        return await self.http.post(
            "/slack/interactions", content=body, headers=slack_headers(body, SIGNING_SECRET)
        )

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.service.scheduler.run_due()

    async def actions(self, call_id: str) -> list[str]:
        return [e.action for e in await self.service.audit_trail(call_id)]


SLACK_CHANNELS = [
    "C-ONE", "C-TWO", "C-TIER0", "C-TIER1", "C-TIER2", "C-FIRST", "C-SECOND",
    "C-Q", "C-Q2", "C-EXP", "C-AUD", "C-CLI", "C-DAY", "C-NIGHT",
]  # fmt: skip
"""Where the operator's policy lets requests go (a channel names nobody)."""

PERSONS = {
    "one": ["U0ONE"],
    "two": ["U0TWO"],
    "lead": ["U0LEAD"],
    "ann": ["U0ANN", "U0ANN2"],  # one person, two Slack accounts
    "ben": ["U0BEN"],
    "late": ["U0LATE"],
    "aud": ["U0AUD"],
    "cli": ["U0CLI"],
}
"""Persons of the directory and their linked Slack user ids: only persons decide."""


POLICY = f"[projects.default]\nslack_channels = {json.dumps(SLACK_CHANNELS)}\n"


def policy_file(directory: Path) -> Path:
    path = directory / "policy.toml"
    path.write_text(POLICY)
    return path


@asynccontextmanager
async def running(path: Path, double: SlackDouble, clock: ManualClock) -> AsyncIterator[Server]:
    settings = slack_settings(
        path.parent, double, policy=POLICY, database_url=f"sqlite:///{path}", public_url=None
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        for name, slack_ids in PERSONS.items():
            await app.state.service.accounts.create_person(name, slack_ids=slack_ids)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Server(app.state.service, http, clock)


@pytest.fixture
async def server(tmp_path: Path, slack_double: SlackDouble) -> AsyncIterator[Server]:
    async with running(tmp_path / "routing.sqlite3", slack_double, ManualClock()) as srv:
        yield srv


def slack(channel: str, **kwargs: Any) -> ContactChannel:
    return ContactChannel(slack=SlackContactChannel(channel_or_user_id=channel, **kwargs))


async def create(server: Server, call_id: str, **spec: Any) -> FunctionCall:
    call = FunctionCall(
        run_id="routing",
        call_id=call_id,
        spec=FunctionCallSpec(fn="deploy", kwargs={"v": 1}, **spec),
    )
    stored, created = await server.service.create_function_call(call)
    assert created
    return stored


def to(channel: str) -> Any:
    return lambda c: c.params.get("channel") == channel


async def posted(double: SlackDouble, channel: str, count: int = 1) -> SlackCall:
    return (await double.await_for("chat.postMessage", count, where=to(channel)))[-1]


async def settle() -> None:
    """Let listener tasks and the scheduler loop run (wall time; the service clock is manual)."""
    await asyncio.sleep(0.3)


async def test_any_of_delivers_everywhere_and_first_answer_wins(
    server: Server, slack_double: SlackDouble
) -> None:
    await create(
        server,
        "any-1",
        policy=ApprovalPolicy(channels=[slack("C-ONE"), slack("C-TWO")], mode="any_of"),
    )
    one = await posted(slack_double, "C-ONE")
    two = await posted(slack_double, "C-TWO")
    assert (await server.click(block_actions(two, "U0TWO", "fl_approve"))).status_code == 200
    call = await server.service.get_function_call("any-1")
    assert call.status is not None and call.status.approved is True
    assert call.status.responded_by == "two" and call.status.responded_via == "slack"
    # Both messages now show the outcome, the one nobody answered included.
    updates = await slack_double.await_for("chat.update", 2)
    assert {(u.params["channel"], u.params["ts"]) for u in updates} == {
        (one.response["channel"], one.response["ts"]),
        (two.response["channel"], two.response["ts"]),
    }
    assert all("*two* via slack" in u.params["text"] for u in updates)
    # A late click on the other message is refused; the decision stands.
    await server.click(block_actions(one, "U0ONE", "fl_approve"))
    note = (await slack_double.await_for("chat.postEphemeral"))[-1]
    assert note.params["user"] == "U0ONE" and "Already decided" in note.params["text"]
    assert (await server.actions("any-1")).count("approved") == 1


async def test_escalate_adds_the_next_tier_only_after_the_delay(
    server: Server, slack_double: SlackDouble
) -> None:
    await create(
        server,
        "esc-1",
        policy=ApprovalPolicy(
            channels=[slack("C-TIER0"), slack("C-TIER1"), slack("C-TIER2")],
            mode="escalate",
            escalate_after_seconds=60,
        ),
    )
    first = await posted(slack_double, "C-TIER0")
    await server.advance(59)
    await settle()
    assert len(slack_double.calls_to("chat.postMessage")) == 1  # not before the delay
    assert "escalated" not in await server.actions("esc-1")

    await server.advance(2)
    await posted(slack_double, "C-TIER1")
    await settle()
    assert not [c for c in slack_double.calls_to("chat.postMessage") if to("C-TIER2")(c)]
    escalated = [e for e in await server.service.audit_trail("esc-1") if e.action == "escalated"]
    assert len(escalated) == 1 and escalated[0].details["tier"] == 1

    await server.advance(60)
    await posted(slack_double, "C-TIER2")
    # The first tier can still answer; every tier's message is updated.
    await server.click(block_actions(first, "U0LEAD", "fl_approve"))
    await slack_double.await_for("chat.update", 3)
    await server.advance(600)
    await settle()
    assert len(slack_double.calls_to("chat.postMessage")) == 3


async def test_no_escalation_once_answered(server: Server, slack_double: SlackDouble) -> None:
    await create(
        server,
        "esc-2",
        policy=ApprovalPolicy(
            channels=[slack("C-FIRST"), slack("C-SECOND")],
            mode="escalate",
            escalate_after_seconds=30,
        ),
    )
    message = await posted(slack_double, "C-FIRST")
    await server.click(block_actions(message, "U0LEAD", "fl_approve"))
    await server.advance(31)
    await settle()
    assert len(slack_double.calls_to("chat.postMessage")) == 1
    assert "escalated" not in await server.actions("esc-2")


async def test_quorum_needs_distinct_approvers(server: Server, slack_double: SlackDouble) -> None:
    await create(
        server, "quorum-1", channel=slack("C-Q"), policy=ApprovalPolicy(approvals_required=2)
    )
    message = await posted(slack_double, "C-Q")
    await server.click(block_actions(message, "U0ANN", "fl_approve"))
    call = await server.service.get_function_call("quorum-1")
    assert call.status is not None and call.status.approved is None
    assert call.status.approvals == ["ann"]
    note = (await slack_double.await_for("chat.postEphemeral"))[-1]
    assert "1 of 2" in note.params["text"]
    progress = (await slack_double.await_for("chat.update"))[-1]
    assert "1 of 2" in progress.blocks_json()
    assert any(b["type"] == "actions" for b in progress.blocks())  # still answerable

    await server.click(block_actions(message, "U0ANN", "fl_approve"))  # the same person again
    call = await server.service.get_function_call("quorum-1")
    assert call.status is not None and call.status.approved is None
    again = (await slack_double.await_for("chat.postEphemeral", 2))[-1]
    assert "already approved" in again.params["text"]
    # ... nor through her other Slack account: quorum counts persons, not accounts.
    await server.click(block_actions(message, "U0ANN2", "fl_approve"))
    call = await server.service.get_function_call("quorum-1")
    assert call.status is not None and call.status.approved is None
    other = (await slack_double.await_for("chat.postEphemeral", 3))[-1]
    assert "already approved" in other.params["text"]

    await server.click(block_actions(message, "U0BEN", "fl_approve"))
    call = await server.service.get_function_call("quorum-1")
    assert call.status is not None and call.status.approved is True
    assert call.status.approvals == ["ann", "ben"]


async def test_quorum_one_rejection_rejects(server: Server, slack_double: SlackDouble) -> None:
    await create(
        server, "quorum-2", channel=slack("C-Q2"), policy=ApprovalPolicy(approvals_required=2)
    )
    message = await posted(slack_double, "C-Q2")
    await server.click(block_actions(message, "U0ANN", "fl_approve"))
    await server.click(block_actions(message, "U0BEN", "fl_reject"))
    view = (await slack_double.await_for("views.open"))[-1].view()
    response = await server.click(view_submission(view, "U0BEN", "not during the freeze"))
    assert response.status_code == 200
    call = await server.service.get_function_call("quorum-2")
    assert call.status is not None and call.status.approved is False
    assert call.status.comment == "not during the freeze" and call.status.responded_by == "ben"


async def test_expiry_fails_closed_with_the_reason(
    server: Server, slack_double: SlackDouble
) -> None:
    await create(server, "exp-1", channel=slack("C-EXP"), timeout_seconds=30)
    message = await posted(slack_double, "C-EXP")
    await server.advance(29)
    call = await server.service.get_function_call("exp-1")
    assert call.status is not None and call.status.approved is None
    await server.advance(2)
    call = await server.service.get_function_call("exp-1")
    completed = call.as_completed()
    assert completed.approved is False and completed.expired
    assert completed.comment is not None and "30 seconds" in completed.comment
    update = (await slack_double.await_for("chat.update"))[-1]
    assert update.params["ts"] == message.response["ts"] and "Expired" in update.params["text"]
    await server.click(block_actions(message, "U0LATE", "fl_approve"))
    assert (await server.service.get_function_call("exp-1")).as_completed().expired


async def test_audit_export_is_project_scoped_json_lines(
    server: Server, slack_double: SlackDouble
) -> None:
    token = await server.service.create_token("exporter")
    other = await server.service.create_token("other", project="elsewhere")
    await create(server, "audit-1", channel=slack("C-AUD"))
    message = await posted(slack_double, "C-AUD")
    await server.click(block_actions(message, "U0AUD", "fl_approve"))
    assert (await server.http.get("/functionlayer/v1/audit.jsonl")).status_code == 401
    response = await server.http.get(
        "/functionlayer/v1/audit.jsonl", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    mine = [line for line in lines if line["call_id"] == "audit-1"]
    assert [line["action"] for line in mine] == ["created", "delivered", "approved"]
    decided = mine[-1]
    assert decided["who"] == "aud" and decided["via"] == "slack" and decided["project"] == "default"
    assert decided["at"]
    elsewhere = await server.http.get(
        "/functionlayer/v1/audit.jsonl", headers={"Authorization": f"Bearer {other}"}
    )
    assert elsewhere.status_code == 200 and elsewhere.text == ""


def test_escalation_fires_after_a_kill_9_restart(
    server_factory: ServerFactory, slack_double: SlackDouble, tmp_path: Path
) -> None:
    policy = str(policy_file(tmp_path))
    server = server_factory(env=slack_env(slack_double, FUNCTIONLAYER_SERVER_POLICY_FILE=policy))
    spec = {
        "fn": "deploy",
        "kwargs": {},
        "policy": {
            "mode": "escalate",
            "escalate_after_seconds": 2,
            "channels": [
                {"slack": {"channel_or_user_id": "C-DAY"}},
                {"slack": {"channel_or_user_id": "C-NIGHT"}},
            ],
        },
    }
    with server.client() as client:
        client.post(
            "/function_calls", json={"run_id": "r", "call_id": "restart-1", "spec": spec}
        ).raise_for_status()
    slack_double.wait_for("chat.postMessage", where=to("C-DAY"))
    server.kill()  # no shutdown code runs: the escalation lives only in the database
    assert not slack_double.calls_to("chat.postMessage")[1:]
    restarted_at = time.time()
    server.start()
    slack_double.wait_for("chat.postMessage", where=to("C-NIGHT"), timeout=20)
    assert len(slack_double.calls_to("chat.postMessage")) == 2  # tier 0 not posted again
    with server.client() as client:
        items = client.get("/function_calls/restart-1/audit").json()["items"]
    escalated = [i for i in items if i["action"] == "escalated"]
    assert len(escalated) == 1
    # Fired by the restarted process, not before the kill.
    assert datetime.fromisoformat(escalated[0]["at"]).timestamp() >= restarted_at


async def test_cli_audit_export(
    server: Server, slack_double: SlackDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from functionlayer_server._cli import main

    await create(server, "cli-1", channel=slack("C-CLI"))
    message = await posted(slack_double, "C-CLI")
    await server.click(block_actions(message, "U0CLI", "fl_approve"))
    url = f"sqlite:///{tmp_path / 'routing.sqlite3'}"
    code = await asyncio.to_thread(
        main, ["audit", "export", "--database-url", url, "--project", "default"]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["action"], e["who"], e["via"]) for e in lines if e["call_id"] == "cli-1"][-1] == (
        "approved",
        "cli",
        "slack",
    )
    code = await asyncio.to_thread(
        main, ["audit", "export", "--database-url", url, "--project", "nobody"]
    )
    assert code == 0 and capsys.readouterr().out == ""
