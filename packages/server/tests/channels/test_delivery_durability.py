"""No channel delivery is lost to a crash between a change's commit and what follows it.

The server process (real ``functionlayer-server serve``) SIGKILLs itself right after the
transaction that stores a new request commits (``crash_after_create.py``), before any listener
runs. After a restart on the same database (SQLite and PostgreSQL) the request reaches its
channel exactly once, through the real Slack client (to the Slack double), the real SMTP client
(to aiosmtpd), the real Discord REST calls (to the Discord double) or the Bot Framework
connector calls (to the Teams double): the delivery job was
written in the create's own transaction. Likewise the Slack message is told the decision when
the server dies right after the decision commits."""

from __future__ import annotations

import email
import email.policy
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from packages.server.tests.channels.conftest import slack_env
from packages.server.tests.channels.crash_after_create import CRASH_DECIDE_ENV, CRASH_ENV
from packages.server.tests.channels.discord_double import DiscordDouble
from packages.server.tests.channels.slack_double import SlackDouble
from packages.server.tests.channels.teams_double import APP_ID, APP_PASSWORD, TeamsDouble
from tests._support.mail import smtp_server
from tests._support.servers import ServerFactory

pytestmark = pytest.mark.timeout(120)

WRAPPER = Path(__file__).with_name("crash_after_create.py")
ADDRESS = "ops@routed.example"
POLICY = """[projects.default]
slack_channels = ["C-OPS"]
discord_channels = ["D-OPS"]
teams_conversations = ["19:ops@thread.tacv2"]
email_domains = ["routed.example"]
"""


class Mailbox:
    """aiosmtpd handler: counts the request emails it received per call id."""

    def __init__(self) -> None:
        self.call_ids: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.call_ids.append(str(message["X-FunctionLayer-Call-Id"]))
        return "250 OK"

    def count(self, call_id: str) -> int:
        with self._lock:
            return self.call_ids.count(call_id)


@dataclass
class Target:
    """A channel to deliver to: the server's environment for it, the request's ``channel``
    and how many deliveries of a call id it has received."""

    env: dict[str, str]
    channel: dict[str, Any]
    received: Callable[[str], int]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with smtp_server(box) as port:
        yield box, port


@pytest.fixture(params=["slack", "email", "discord", "teams"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "slack":
        slack: SlackDouble = request.getfixturevalue("slack_double")
        return Target(
            env=slack_env(slack),
            channel={"slack": {"channel_or_user_id": "C-OPS"}},
            received=lambda call_id: len(
                [c for c in slack.calls_to("chat.postMessage") if f"`{call_id}`" in c.blocks_json()]
            ),
        )
    if request.param == "email":
        box, port = request.getfixturevalue("mailbox")
        return Target(
            env={
                "FUNCTIONLAYER_SERVER_SMTP_HOST": "127.0.0.1",
                "FUNCTIONLAYER_SERVER_SMTP_PORT": str(port),
                "FUNCTIONLAYER_SERVER_SMTP_STARTTLS": "false",
                "FUNCTIONLAYER_SERVER_EMAIL_FROM": "FunctionLayer <approvals@fl.example>",
            },
            channel={"email": {"address": ADDRESS}},
            received=box.count,
        )
    if request.param == "teams":
        teams: TeamsDouble = request.getfixturevalue("teams_double")
        return Target(
            env={
                "FUNCTIONLAYER_SERVER_TEAMS_APP_ID": APP_ID,
                "FUNCTIONLAYER_SERVER_TEAMS_APP_PASSWORD": APP_PASSWORD,
                "FUNCTIONLAYER_SERVER_TEAMS_TOKEN_URL": teams.token_url,
                "FUNCTIONLAYER_SERVER_TEAMS_SERVICE_URL": teams.service_url,
                "FUNCTIONLAYER_SERVER_TEAMS_OPENID_URL": teams.openid_url,
            },
            channel={"teams": {"conversation_id": "19:ops@thread.tacv2"}},
            received=lambda call_id: len(
                teams.find("POST", lambda c: json.dumps(call_id) in json.dumps(c.body))
            ),
        )
    discord: DiscordDouble = request.getfixturevalue("discord_double")
    return Target(
        env={
            "FUNCTIONLAYER_SERVER_DISCORD_BOT_TOKEN": "discord-bot-token-for-tests",
            "FUNCTIONLAYER_SERVER_DISCORD_PUBLIC_KEY": SigningKey.generate()
            .verify_key.encode()
            .hex(),
            "FUNCTIONLAYER_SERVER_DISCORD_API_BASE": discord.api_base,
        },
        channel={"discord": {"channel_id": "D-OPS"}},
        received=lambda call_id: len(
            discord.find(
                "POST",
                lambda c: c.path.endswith("/messages") and call_id in json.dumps(c.body),
            )
        ),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_delivery_survives_kill_9_right_after_the_create_commits(
    server_factory: ServerFactory, target: Target, database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = {
        **target.env,
        "FUNCTIONLAYER_SERVER_POLICY_FILE": str(policy),
        "FUNCTIONLAYER_SERVER_SCHEDULER_INTERVAL_SECONDS": "0.2",
    }
    srv = server_factory(database_url, env={**env, CRASH_ENV: "1"}, start=False)
    srv.command = [sys.executable, str(WRAPPER), "serve"]
    srv.start()
    call_id = "deploy-after-crash"
    body = {
        "run_id": "crash-run",
        "call_id": call_id,
        "spec": {"fn": "deploy", "kwargs": {"service": "billing"}, "channel": target.channel},
    }

    with pytest.raises(httpx.TransportError):  # the server dies before it answers
        srv.client().post("/function_calls", json=body)
    assert srv.proc is not None
    assert srv.proc.wait(10) == -9, "the crash point was not reached"
    srv.proc = None
    assert target.received(call_id) == 0  # it died before anything was sent

    srv.env.pop(CRASH_ENV)
    srv.start()  # the same database, no crash point
    client = srv.client()
    stored = client.get(f"/function_calls/{call_id}")
    assert stored.status_code == 200, "the request committed before the crash was lost"
    assert wait_until(lambda: target.received(call_id) >= 1, 20), (
        "the delivery of a request committed just before a crash was lost"
    )
    # The agent retries its create (idempotent): nothing is delivered again, now or later.
    retried = client.post("/function_calls", json=body)
    assert retried.status_code == 200, retried.text
    time.sleep(1.5)  # several scheduler rounds
    assert target.received(call_id) == 1
    actions = [e["action"] for e in client.get(f"/function_calls/{call_id}/audit").json()["items"]]
    assert actions.count("created") == 1 and actions.count("delivered") == 1, actions


def test_the_decision_reaches_slack_after_kill_9_right_after_it_commits(
    server_factory: ServerFactory, slack_double: SlackDouble, database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = {**slack_env(slack_double), "FUNCTIONLAYER_SERVER_POLICY_FILE": str(policy)}
    srv = server_factory(database_url, env={**env, CRASH_DECIDE_ENV: "1"}, start=False)
    srv.command = [sys.executable, str(WRAPPER), "serve"]
    srv.start()
    call_id = "decided-before-crash"
    body = {
        "run_id": "crash-run",
        "call_id": call_id,
        "spec": {
            "fn": "deploy",
            "kwargs": {"service": "billing"},
            "channel": {"slack": {"channel_or_user_id": "C-OPS"}},
        },
    }
    assert srv.client().post("/function_calls", json=body).status_code == 200
    message = slack_double.wait_for(
        "chat.postMessage", where=lambda c: f"`{call_id}`" in c.blocks_json()
    )[0]

    def updates() -> int:
        return len(
            [
                c
                for c in slack_double.calls_to("chat.update")
                if c.params.get("ts") == message.response["ts"]
            ]
        )

    human = srv.approver_client()
    with pytest.raises(httpx.TransportError):  # the server dies before it answers
        human.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
    assert srv.proc is not None
    assert srv.proc.wait(10) == -9, "the crash point was not reached"
    srv.proc = None
    assert updates() == 0  # it died before telling Slack

    srv.env.pop(CRASH_DECIDE_ENV)
    srv.start()
    status = srv.client().get(f"/function_calls/{call_id}").json()["status"]
    assert status["approved"] is True, "the decision committed before the crash was lost"
    assert wait_until(lambda: updates() >= 1, 20), (
        "Slack was never told the decision committed just before a crash"
    )
    time.sleep(1.0)  # several scheduler rounds
    assert updates() == 1
