"""The channel conformance suite: every channel through which a person can decide runs the same
hostile cases and must give the same outcome for each (the case list is in docs/security.md).

A channel joins by adding a :class:`Channel` harness to ``CHANNELS``: how a request is routed to
it, what a person is shown (``Shown``), and how an identity tries to approve through it. The
cases are written once, against that interface:

- arguments longer than the channel can show: either every argument is shown, or no Approve;
- hidden and look-alike characters in arguments: marked, never passed through raw;
- markup and mentions in every agent-written field: inert (no ping, no HTML, no link);
- an edit that changes nothing: a plain approval, with no edits on record;
- an attempt by an unlinked, a disabled, another project's, or the agent's own identity: refused,
  nothing decided; then the linked person's approval counts, recorded with the channel's name;
- a replayed approval and a stale signature: refused, one decision on record;
- an approval of a request already decided, or expired: refused, the record unchanged.

In process (one app per database for the module, TestClient; SQLite and PostgreSQL), with the real Slack Web API client against the
local Slack double, Discord interactions signed with a real Ed25519 key, Teams activities with real
RS256 tokens from the local Bot Framework identity double, and a real SMTP server.
The terminal is the core's TerminalBackend with a scripted person at its input.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from functionlayer import FunctionCall, FunctionCallSpec, TerminalBackend
from functionlayer.models import FunctionCallStatus
from nacl.signing import SigningKey

from packages.server.tests.channels._app import in_process, slack_settings
from packages.server.tests.channels.conftest import SIGNING_SECRET
from packages.server.tests.channels.discord_double import DiscordCall, DiscordDouble
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    block_actions,
    interaction_body,
    slack_headers,
)
from packages.server.tests.channels.teams_double import (
    APP_ID,
    APP_PASSWORD,
    TeamsDouble,
    card_nodes,
    new_key,
)
from packages.server.tests.channels.test_email import Mailbox, parts, reply
from tests._support.inbox import CSRF_RE, csrf_of
from tests._support.mail import email_settings, smtp_server
from tests._support.servers import fresh_postgres_database

pytestmark = pytest.mark.timeout(120)

PASSWORD = "conformance-password"
INBOUND_SECRET = "conformance-inbound-secret"
DISCORD_KEY = SigningKey.generate()
# Identities of the directory: alice decides in project default on every channel; dora is the
# same but disabled; olga belongs to another project; the "unlinked" ones resolve to nobody.
IDS: dict[str, dict[str, str]] = {
    "alice": {
        "slack": "U0ALICE",
        "discord": "111111111111111111",
        "email": "alice@corp.example",
        "teams": "a11ce000-0000-4000-8000-000000000001",
    },
    "dora": {
        "slack": "U0DORA",
        "discord": "444444444444444444",
        "email": "dora@corp.example",
        "teams": "d0a00000-0000-4000-8000-000000000004",
    },
    "olga": {
        "slack": "U0OLGA",
        "discord": "333333333333333333",
        "email": "olga@corp.example",
        "teams": "01ga0000-0000-4000-8000-000000000003",
    },
    "unlinked": {
        "slack": "U0NOBODY",
        "discord": "999999999999999999",
        "email": "nobody@corp.example",
        "teams": "00b0d000-0000-4000-8000-000000000009",
    },
}
INTRUDERS = ("unlinked", "dora", "olga", "agent")

HIDDEN = [
    "\u202e",  # right-to-left override
    "\u200b",  # zero-width space
    "\u2066",  # left-to-right isolate
    "\ufe0f",  # variation selector 16
    "\U000e0101",  # variation selector 18 (supplement)
    "\u034f",  # combining grapheme joiner
    "\u180b",  # Mongolian free variation selector
    "\u17b4",  # Khmer inherent vowel
    "\u3164",  # Hangul filler
    "\u2800",  # braille blank
    "\u115f",  # Hangul choseong filler
    "\u00ad",  # soft hyphen
]
HOSTILE = (
    "<@U0ALICE> <!channel> <!here> @everyone @here <@&123> "
    "<script>alert(1)</script> <img src=x onerror=alert(1)> "
    "[click](http://evil.example/x) <http://evil.example|safe> **bold** `code` "
    "\x1b[2J\x1b[31mred"
)


@dataclass
class Shown:
    """What a person reads for a request on a channel, and whether Approve is offered there."""

    text: str  # everything a person reads, unescaped
    raw: str  # what the channel sent (blocks JSON, message JSON, HTML)
    offers_approve: bool


@dataclass
class World:
    client: TestClient
    service: Any
    slack: SlackDouble
    discord: DiscordDouble
    mailbox: Mailbox
    teams: TeamsDouble
    tokens: dict[str, str] = field(default_factory=dict)

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        portal = self.client.portal
        assert portal is not None
        return portal.call(lambda: fn(*args, **kwargs))

    def create(self, call_id: str, channel: dict[str, Any] | None, **spec: Any) -> None:
        spec.setdefault("fn", "wire_money")
        spec.setdefault("kwargs", {"amount": 100, "to": "ACME"})
        response = self.client.post(
            "/functionlayer/v1/function_calls",
            json={
                "run_id": "conformance",
                "call_id": call_id,
                "spec": {**spec, "channel": channel},
            },
            headers={"Authorization": f"Bearer {self.tokens['agent']}"},
        )
        assert response.status_code == 200, response.text

    def status(self, call_id: str) -> FunctionCallStatus:
        call = self.run(self.service.get_function_call, call_id)
        return call.status or FunctionCallStatus()

    def actions(self, call_id: str) -> list[str]:
        return [e.action for e in self.run(self.service.audit_trail, call_id)]

    def api(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(
            method,
            "/functionlayer/v1" + path,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            **kwargs,
        )

    def approve_by_api(self, call_id: str) -> None:
        answer = self.api(
            "alice", "POST", f"/agent/function_calls/{call_id}/respond", json={"approved": True}
        )
        assert answer.status_code == 200, answer.text

    def expire(self, call_id: str) -> None:
        answer = self.api(
            "agent",
            "POST",
            f"/agent/function_calls/{call_id}/respond",
            json={"expired": True, "comment": "gave up"},
        )
        assert answer.status_code == 200, answer.text


# -- the channels ----------------------------------------------------------------------------


class Channel:
    name: ClassVar[str]
    via: ClassVar[str]
    shows_arguments: ClassVar[bool] = True  # False: a program reads exact JSON (the API)
    takes_edits: ClassVar[bool] = False
    signs: ClassVar[bool] = False  # answers carry a signature that can go stale
    audits_refusals: ClassVar[bool] = False  # a refused identity it can name is audited
    #: What must never be in what the channel sends: markup that would act (HTML, a ping, a link).
    live: ClassVar[tuple[str, ...]] = ()

    def __init__(self, world: World) -> None:
        self.w = world
        self.last: dict[str, Any] = {}  # call id -> the channel's delivery (for replays)

    def route(self) -> dict[str, Any] | None:
        return None

    def request(self, call_id: str, **spec: Any) -> Shown:
        self.w.create(call_id, self.route(), **spec)
        return self.shown(call_id)

    def shown(self, call_id: str) -> Shown:
        raise NotImplementedError

    def approve(self, call_id: str, who: str) -> Any:
        """``who`` tries to approve through this channel; returns what replays it."""
        raise NotImplementedError

    def replay(self, call_id: str, attempt: Any) -> None:
        raise NotImplementedError

    def stale(self, call_id: str) -> None:
        raise NotImplementedError

    def approve_with_same_arguments(self, call_id: str, kwargs: dict[str, Any]) -> None:
        raise NotImplementedError


class Inbox(Channel):
    name = via = "web"
    takes_edits = True
    live = ("<script>", "<img src=x", 'href="http://evil.example', "\x1b")

    def _login(self, who: str) -> bool:
        client = self.w.client
        client.cookies.clear()
        if who == "agent":
            return False
        page = client.get("/inbox/login")
        token = csrf_of(page.text)
        answer = client.post(
            "/inbox/login",
            data={"username": who, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        return answer.status_code == 303

    def shown(self, call_id: str) -> Shown:
        assert self._login("alice")
        page = self.w.client.get(f"/inbox/calls/{call_id}")
        assert page.status_code == 200, page.text
        return Shown(_html_text(page.text), page.text, 'id="approve"' in page.text)

    def _post(self, call_id: str, who: str, data: dict[str, str]) -> Any:
        client = self.w.client
        logged_in = self._login(who)
        headers = {}
        if who == "agent":  # the agent's own credential, on the inbox
            headers = {"Authorization": f"Bearer {self.w.tokens['agent']}"}
        csrf = ""
        if logged_in:  # a valid CSRF token of the session, even where the call is not shown
            page = client.get(f"/inbox/calls/{call_id}")
            if page.status_code != 200 or not CSRF_RE.search(page.text):
                page = client.get("/inbox")
            csrf = csrf_of(page.text)
        form = {**data, "csrf_token": csrf}
        client.post(f"/inbox/calls/{call_id}", data=form, headers=headers, follow_redirects=False)
        return (who, form)

    def approve(self, call_id: str, who: str) -> Any:
        return self._post(call_id, who, {"action": "approve"})

    def replay(self, call_id: str, attempt: Any) -> None:
        _, form = attempt
        self.w.client.post(f"/inbox/calls/{call_id}", data=form, follow_redirects=False)

    def approve_with_same_arguments(self, call_id: str, kwargs: dict[str, Any]) -> None:
        assert self._login("alice")
        page = self.w.client.get(f"/inbox/calls/{call_id}")
        form = _form_fields(page.text, "edit-form")
        answer = self.w.client.post(f"/inbox/calls/{call_id}", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text


class ApproverApi(Channel):
    name = via = "api"
    shows_arguments = False
    takes_edits = True

    def shown(self, call_id: str) -> Shown:
        answer = self.w.api("alice", "GET", f"/function_calls/{call_id}")
        return Shown(answer.text, answer.text, True)

    def approve(self, call_id: str, who: str) -> Any:
        token = {"unlinked": "revoked"}.get(who, who)
        self.w.api(
            token, "POST", f"/agent/function_calls/{call_id}/respond", json={"approved": True}
        )
        return token

    def replay(self, call_id: str, attempt: Any) -> None:
        self.approve(call_id, "alice")

    def approve_with_same_arguments(self, call_id: str, kwargs: dict[str, Any]) -> None:
        answer = self.w.api(
            "alice",
            "POST",
            f"/agent/function_calls/{call_id}/respond",
            json={"approved": True, "edited_kwargs": kwargs},
        )
        assert answer.status_code == 200, answer.text


class Slack(Channel):
    name = via = "slack"
    signs = True
    audits_refusals = True
    live = ("<@U0ALICE>", "<!channel>", "<!here>", "<http://evil.example|safe>", "\x1b")

    def route(self) -> dict[str, Any]:
        return {"slack": {"channel_or_user_id": "C-OPS"}}

    def _message(self, call_id: str) -> SlackCall:
        return self.w.slack.wait_for(
            "chat.postMessage", where=lambda c: f"`{call_id}`" in c.blocks_json()
        )[-1]

    def shown(self, call_id: str) -> Shown:
        message = self._message(call_id)
        texts: list[str] = []
        _strings(message.blocks(), texts)
        text = html.unescape("\n".join(texts))
        offers = any(
            str(e.get("action_id", "")) == "fl_approve"
            for b in message.blocks()
            for e in b.get("elements", [])
        )
        return Shown(text, message.blocks_json(), offers)

    def _post(
        self, payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: int | None = None
    ) -> Any:
        body = interaction_body(payload)
        return self.w.client.post(
            "/slack/interactions",
            content=body,
            headers=slack_headers(body, secret, timestamp=timestamp),
        )

    def approve(self, call_id: str, who: str) -> Any:
        message = self._message(call_id)
        try:
            payload = block_actions(
                message, IDS["alice" if who == "agent" else who]["slack"], "fl_approve"
            )
        except AssertionError:  # no Approve button on this message: nothing to click
            return None
        # The agent has no signing secret: it can only forge one.
        self._post(payload, secret="agent-guess" if who == "agent" else SIGNING_SECRET)
        return payload

    def replay(self, call_id: str, attempt: Any) -> None:
        self._post(attempt)

    def stale(self, call_id: str) -> None:
        payload = block_actions(self._message(call_id), IDS["alice"]["slack"], "fl_approve")
        answer = self._post(payload, timestamp=int(time.time()) - 600)
        assert answer.status_code in (400, 401, 403), answer.text


class Discord(Channel):
    name = via = "discord"
    signs = True
    audits_refusals = True
    live = ("\x1b",)  # mentions: allowed_mentions and escaping, checked in the test

    def route(self) -> dict[str, Any]:
        return {"discord": {"channel_id": "D-OPS"}}

    def _message(self, call_id: str) -> DiscordCall:
        def mine(c: DiscordCall) -> bool:
            return (
                c.method == "POST"
                and c.path.endswith("/messages")
                and (call_id in json.dumps(c.body.get("components")))
            )

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = self.w.discord.find("POST", mine)
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no Discord message for {call_id}")

    def shown(self, call_id: str) -> Shown:
        message = self._message(call_id)
        texts: list[str] = []
        _strings({k: v for k, v in message.body.items() if k != "components"}, texts)
        labels = [b.get("label") for row in message.body["components"] for b in row["components"]]
        return Shown(
            _discord_unescape("\n".join(texts)), json.dumps(message.body), "Approve" in labels
        )

    def _click(self, call_id: str, user: str) -> dict[str, Any] | None:
        message = self._message(call_id)
        approve = [
            b
            for row in message.body["components"]
            for b in row["components"]
            if b.get("label") == "Approve"
        ]
        if not approve:
            return None
        return {
            "id": f"interaction-{uuid.uuid4().hex}",
            "application_id": "app",
            "type": 3,
            "token": "interaction-token",
            "version": 1,
            "channel_id": message.response["channel_id"],
            "guild_id": "G1",
            "member": {"user": {"id": user, "username": "someone"}},
            "message": {"id": message.response["id"], "channel_id": message.response["channel_id"]},
            "data": {"custom_id": approve[0]["custom_id"], "component_type": 2},
        }

    def _post(
        self,
        payload: dict[str, Any],
        *,
        key: SigningKey = DISCORD_KEY,
        timestamp: int | None = None,
    ) -> Any:
        body = json.dumps(payload).encode()
        ts = str(timestamp or int(time.time()))
        signature = key.sign(ts.encode() + body).signature.hex()
        return self.w.client.post(
            "/channels/discord/interactions",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Signature-Ed25519": signature,
                "X-Signature-Timestamp": ts,
            },
        )

    def approve(self, call_id: str, who: str) -> Any:
        payload = self._click(call_id, IDS["alice" if who == "agent" else who]["discord"])
        if payload is None:
            return None
        self._post(payload, key=SigningKey.generate() if who == "agent" else DISCORD_KEY)
        return payload

    def replay(self, call_id: str, attempt: Any) -> None:
        self._post(attempt)

    def stale(self, call_id: str) -> None:
        payload = self._click(call_id, IDS["alice"]["discord"])
        assert payload is not None
        answer = self._post(payload, timestamp=int(time.time()) - 600)
        assert answer.status_code == 401, answer.text


class Teams(Channel):
    name = via = "teams"
    signs = True
    audits_refusals = True
    live = ("\x1b",)  # markdown: agent text only in TextRuns, checked in the test
    conversation = "19:conformance@thread.tacv2"

    def route(self) -> dict[str, Any]:
        return {"teams": {"conversation_id": self.conversation}}

    def _card(self, call_id: str) -> Any:
        needle = json.dumps(call_id)
        found = self.w.teams.wait_for(
            "POST", where=lambda c: needle in json.dumps(c.body), timeout=10
        )
        return found[-1]

    def shown(self, call_id: str) -> Shown:
        card = self._card(call_id).card
        texts: list[str] = []
        _strings(_teams_texts(card), texts)
        return Shown("\n".join(texts), json.dumps(card), "Approve" in _teams_titles(card))

    def _activity(self, call_id: str, user: str) -> dict[str, Any] | None:
        posted = self._card(call_id)
        approve = [
            n
            for n in card_nodes(posted.card)
            if n.get("type") == "Action.Submit" and n.get("title") == "Approve"
        ]
        if not approve:
            return None
        return {
            "type": "message",
            "id": f"1{uuid.uuid4().int % 10**15}",
            "channelId": "msteams",
            "serviceUrl": self.w.teams.service_url,
            "from": {"id": "29:someone", "aadObjectId": user},
            "conversation": {"id": f"{posted.conversation};messageid={posted.response['id']}"},
            "replyToId": posted.response["id"],
            "value": approve[0]["data"],
        }

    def _post(self, activity: dict[str, Any], token: str) -> Any:
        return self.w.client.post(
            "/channels/teams/messages",
            json=activity,
            headers={"Authorization": f"Bearer {token}"},
        )

    def approve(self, call_id: str, who: str) -> Any:
        activity = self._activity(call_id, IDS["alice" if who == "agent" else who]["teams"])
        if activity is None:
            return None
        # The agent has no key of the Bot Framework: it can only sign with one of its own.
        token = self.w.teams.sign(key=new_key()) if who == "agent" else self.w.teams.sign()
        self._post(activity, token)
        return activity, token

    def replay(self, call_id: str, attempt: Any) -> None:
        self._post(*attempt)

    def stale(self, call_id: str) -> None:
        activity = self._activity(call_id, IDS["alice"]["teams"])
        assert activity is not None
        now = int(time.time())
        token = self.w.teams.sign(iat=now - 1200, nbf=now - 1200, exp=now - 600)
        answer = self._post(activity, token)
        assert answer.status_code == 401, answer.text


class Email(Channel):
    name = via = "email"
    audits_refusals = True
    live = ("<script>", "<img src=x", 'href="http://evil.example', "\x1b")

    def route(self) -> dict[str, Any]:
        return {"email": {"address": IDS["alice"]["email"]}}

    def _message(self, call_id: str) -> EmailMessage:
        return self.w.mailbox.wait_for(
            lambda rcpts, m: (
                IDS["alice"]["email"] in rcpts and m["X-FunctionLayer-Call-Id"] == call_id
            )
        )

    def shown(self, call_id: str) -> Shown:
        text, page = parts(self._message(call_id))
        return Shown(text, page, re.search(r"^Approve: \S+", text, re.MULTILINE) is not None)

    def _link(self, call_id: str) -> str | None:
        text, _ = parts(self._message(call_id))
        found = re.search(r"^Approve: (\S+)\s*$", text, re.MULTILINE)
        return found.group(1).replace("http://testserver", "") if found else None

    def approve(self, call_id: str, who: str) -> Any:
        message = self._message(call_id)
        if who == "alice":
            link = self._link(call_id)
            if link is None:
                return None
            self.w.client.post(link)
            return link
        if who == "agent":  # a forged reply: alice's address, threaded to what the agent can read
            readable = (
                self.w.api("agent", "GET", f"/function_calls/{call_id}/audit").text
                + self.w.api("agent", "GET", "/audit.jsonl", params={"call_id": call_id}).text
                + self.w.api("agent", "GET", f"/function_calls/{call_id}").text
            )
            learnt = re.findall(r"<[^<>@\s\"]+@[^<>\s\"]+>", readable)
            thread = learnt[0] if learnt else f"<fl-{uuid.uuid4().hex}@fl.example>"
            self._inbound(_forged_reply(IDS["alice"]["email"], thread, message["Subject"]))
            return None
        # Anyone else replies "approve" to alice's copy (forwarded to them) from their address.
        self._inbound(reply(message, sender=IDS[who]["email"], body="approve"))
        return None

    def _inbound(self, raw: bytes) -> None:
        self.w.client.post(
            "/email/inbound",
            content=raw,
            headers={
                "Content-Type": "message/rfc822",
                "X-FunctionLayer-Inbound-Secret": INBOUND_SECRET,
            },
        )

    def replay(self, call_id: str, attempt: Any) -> None:
        assert isinstance(attempt, str)
        self.w.client.post(attempt)


class Terminal(Channel):
    """The core's terminal: the person at this process's terminal, nobody else."""

    name = via = "terminal"
    live = ("\x1b",)  # a terminal renders no HTML, but escape sequences act

    def request(self, call_id: str, **spec: Any) -> Shown:
        spec.setdefault("fn", "wire_money")
        spec.setdefault("kwargs", {"amount": 100, "to": "ACME"})
        out = io.StringIO()
        backend = TerminalBackend(input=io.StringIO("n\nnot now\n"), output=out)
        backend.create_function_call(
            FunctionCall(run_id="conformance", call_id=call_id, spec=FunctionCallSpec(**spec))
        )
        text = out.getvalue()
        return Shown(text, text, "Approve? [y/N" in text)


CHANNELS: list[type[Channel]] = [Inbox, ApproverApi, Slack, Discord, Teams, Email, Terminal]
#: Each case runs on every channel it applies to (a new channel is in every list it qualifies for).
SHOWING = [c for c in CHANNELS if c.shows_arguments]  # a person reads a rendering
DECIDING = [c for c in CHANNELS if c is not Terminal]  # the terminal's person is its process
SIGNING = [c for c in DECIDING if c.signs]
EDITING = [c for c in DECIDING if c.takes_edits]


# -- the app ----------------------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            database_url = stack.enter_context(fresh_postgres_database())
        else:
            directory = tmp_path_factory.mktemp("conformance-db")
            database_url = f"sqlite:///{directory / 'conformance.sqlite3'}"
        yield from _world(tmp_path_factory, database_url)


def _world(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[World]:
    mailbox = Mailbox()
    with (
        SlackDouble() as slack,
        DiscordDouble() as discord,
        TeamsDouble() as teams,
        smtp_server(mailbox) as port,
    ):
        settings = slack_settings(
            tmp_path_factory.mktemp("conformance"),
            slack,
            policy=(
                '[default]\nslack_channels = ["C-OPS"]\ndiscord_channels = ["D-OPS"]\n'
                'email_domains = ["corp.example"]\n'
                f'teams_conversations = ["{Teams.conversation}"]\n'
            ),
            database_url=database_url,
            discord_bot_token="discord-bot-token",
            discord_public_key=DISCORD_KEY.verify_key.encode().hex(),
            discord_api_base=discord.api_base,
            teams_app_id=APP_ID,
            teams_app_password=APP_PASSWORD,
            teams_token_url=teams.token_url,
            teams_service_url=teams.service_url,
            teams_openid_url=teams.openid_url,
            **email_settings(port, email_inbound_secret=INBOUND_SECRET),
        )
        with in_process(settings) as (client, service):
            w = World(client, service, slack, discord, mailbox, teams)
            accounts = service.accounts
            for name in ("alice", "dora", "olga"):
                w.run(
                    accounts.create_person,
                    name,
                    password=PASSWORD,
                    emails=[IDS[name]["email"]],
                    slack_ids=[IDS[name]["slack"]],
                    discord_ids=[IDS[name]["discord"]],
                    teams_ids=[IDS[name]["teams"]],
                    projects=["other"] if name == "olga" else ["default"],
                )
                w.tokens[name] = w.run(
                    service.create_token,
                    f"{name}-approver",
                    approver=name,
                    project="other" if name == "olga" else "default",
                )
            w.run(accounts.disable, "dora")
            w.tokens["agent"] = w.run(service.create_token, "agent")
            w.tokens["revoked"] = "fl_not_a_live_token"
            yield w


def _harness(request: pytest.FixtureRequest, world: World) -> Channel:
    return request.param(world)  # type: ignore[no-any-return]


@pytest.fixture(params=SHOWING, ids=lambda c: c.name)
def channel(request: pytest.FixtureRequest, world: World) -> Channel:
    return _harness(request, world)


@pytest.fixture(params=DECIDING, ids=lambda c: c.name)
def deciding(request: pytest.FixtureRequest, world: World) -> Channel:
    return _harness(request, world)


@pytest.fixture(params=SIGNING, ids=lambda c: c.name)
def signing(request: pytest.FixtureRequest, world: World) -> Channel:
    return _harness(request, world)


@pytest.fixture(params=EDITING, ids=lambda c: c.name)
def editing(request: pytest.FixtureRequest, world: World) -> Channel:
    return _harness(request, world)


def _id(kind: str) -> str:
    return f"conf-{kind}-{uuid.uuid4().hex[:8]}"


# -- what a person is shown -------------------------------------------------------------------


def test_arguments_are_shown_in_full_or_approve_is_not_offered(channel: Channel) -> None:
    tail = "END-OF-THE-NOTE"
    long_note = "".join(f"line {i}: pay ACME the agreed amount\n" for i in range(400)) + tail
    shown = channel.request(_id("long"), kwargs={"amount": 100, "note": long_note})
    assert shown.offers_approve == (tail in shown.text), (
        f"{channel.name}: Approve offered={shown.offers_approve} but the whole note shown="
        f"{tail in shown.text}"
    )
    short = channel.request(_id("short"), kwargs={"amount": 100, "to": "ACME"})
    assert short.offers_approve, f"{channel.name} offers no Approve for short arguments"


def test_hidden_characters_are_marked(channel: Channel) -> None:
    to = "pay" + "".join(HIDDEN) + "pal"
    shown = channel.request(
        _id("hidden"),
        description=f"Wire money to {to}.",  # the docstring is the agent's too
        kwargs={"amount": 100, "to": to, "payee": "p\u0430ypal"},  # Cyrillic a in a Latin word
    )
    unmarked = [f"U+{ord(c):04X}" for c in HIDDEN if f"⟨U+{ord(c):04X}⟩" not in shown.text]
    assert not unmarked, f"{channel.name} shows these unmarked: {unmarked}"
    raw = [f"U+{ord(c):04X}" for c in HIDDEN if c in shown.text]
    assert not raw, f"{channel.name} passes these through raw (arguments or docstring): {raw}"
    assert "⟨U+0430⟩" in shown.text, f"{channel.name} does not mark the look-alike letter"


def test_markup_and_mentions_in_agent_text_are_inert(channel: Channel) -> None:
    shown = channel.request(
        _id("markup"),
        description=f"Wire money. {HOSTILE}",
        kwargs={"amount": 100, "note": HOSTILE},
        parameters={
            "type": "object",
            "properties": {
                "amount": {"type": "integer", "description": f"amount {HOSTILE}"},
                "note": {"type": "string"},
            },
        },
    )
    raw = shown.raw
    if isinstance(channel, Slack):  # plain_text shows markup literally: only mrkdwn renders it
        raw = "\n".join(_mrkdwn(json.loads(raw)))
    for live in channel.live:
        assert live not in raw, f"{channel.name} sent {live!r} live"
    if isinstance(channel, Discord):
        body = json.loads(raw)
        assert body.get("allowed_mentions") == {"parse": []}
        assert "@everyone" not in json.dumps(body), "an unescaped @everyone"
    if isinstance(channel, Teams):  # markdown renders in TextBlocks only; mentions need entities
        card = json.loads(raw)
        assert "entities" not in card.get("msteams", {})
        for node in card_nodes(card):
            if node.get("type") == "TextBlock":
                assert "evil.example" not in node["text"] and "alert(1)" not in node["text"]
    # Inert, not hidden: the person still reads what the agent wrote.
    assert "alert(1)" in shown.text and "evil.example" in shown.text


# -- who may decide ---------------------------------------------------------------------------


def test_only_the_linked_person_decides(deciding: Channel, world: World) -> None:
    call_id = _id("who")
    deciding.request(call_id)
    for who in INTRUDERS:
        deciding.approve(call_id, who)
        status = world.status(call_id)
        assert status.approved is None, f"{deciding.name}: {who} decided"
    if deciding.audits_refusals:  # a refused identity the channel could name is audited
        refused = [a for a in world.actions(call_id) if a.endswith("refused")]
        assert refused, world.actions(call_id)
    deciding.approve(call_id, "alice")
    status = world.status(call_id)
    assert status.approved is True and status.responded_by == "alice"
    assert status.responded_via == deciding.via


def test_a_replayed_approval_decides_nothing_more(deciding: Channel, world: World) -> None:
    call_id = _id("replay")
    deciding.request(call_id)
    attempt = deciding.approve(call_id, "alice")
    assert world.status(call_id).approved is True
    deciding.replay(call_id, attempt)
    assert world.actions(call_id).count("approved") == 1


def test_a_stale_signature_is_refused(signing: Channel, world: World) -> None:
    call_id = _id("stale")
    signing.request(call_id)
    signing.stale(call_id)
    assert world.status(call_id).approved is None


def test_an_edit_that_changes_nothing_is_a_plain_approval(editing: Channel, world: World) -> None:
    call_id = _id("noop-edit")
    kwargs = {"amount": 100, "to": "ACME", "memo": None}
    editing.request(
        call_id,
        kwargs=kwargs,
        parameters={
            "type": "object",
            "properties": {
                "amount": {"type": "integer"},
                "to": {"type": "string"},
                "memo": {"type": ["string", "null"], "default": None},
                "fee": {"type": "integer", "default": 5},
            },
        },
    )
    editing.approve_with_same_arguments(call_id, kwargs)
    status = world.status(call_id)
    assert status.approved is True
    assert status.edited_kwargs in (None, kwargs), status.edited_kwargs


def test_a_decided_or_expired_request_cannot_be_approved_again(
    deciding: Channel, world: World
) -> None:
    decided = _id("decided")
    deciding.request(decided)
    rejected = world.api(
        "alice",
        "POST",
        f"/agent/function_calls/{decided}/respond",
        json={"approved": False, "comment": "no"},
    )
    assert rejected.status_code == 200, rejected.text
    deciding.approve(decided, "alice")
    status = world.status(decided)
    assert status.approved is False and status.comment == "no"

    expired = _id("expired")
    deciding.request(expired)
    world.expire(expired)
    deciding.approve(expired, "alice")
    status = world.status(expired)
    assert status.approved is False and status.expired
    assert "approved" not in world.actions(expired)


# -- helpers ----------------------------------------------------------------------------------


def _html_text(page: str) -> str:
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _form_fields(page: str, form_id: str) -> dict[str, str]:
    """The fields a browser would submit for the form ``form_id``, as the page fills them."""
    form = re.search(rf'(?s)<form[^>]*id="{form_id}".*?</form>', page)
    assert form, f"no form {form_id}"
    fields: dict[str, str] = {}
    for tag in re.finditer(
        r"<(input|textarea|select)\b([^>]*)>(?:(.*?)</textarea>)?", form.group(0), re.S
    ):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag.group(2)))
        name = attrs.get("name")
        if not name:
            continue
        if tag.group(1) == "textarea":
            fields[name] = html.unescape(tag.group(3) or "")
        elif attrs.get("type") == "checkbox":
            if " checked" in tag.group(2):
                fields[name] = attrs.get("value", "on")
        else:
            fields[name] = html.unescape(attrs.get("value", ""))
    return fields


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for value in node.values():
            _strings(value, out)
    elif isinstance(node, list):
        for value in node:
            _strings(value, out)


def _forged_reply(sender: str, thread: str, subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Alice <{sender}>"
    message["To"] = "approvals@fl.example"
    message["Subject"] = f"Re: {subject}"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@agent.example>"
    message["In-Reply-To"] = thread
    message["References"] = thread
    message.set_content("approve\n")
    return message.as_bytes()


def _mrkdwn(node: Any) -> list[str]:
    """The texts Slack renders as mrkdwn (where ``<@U…>``, ``<!channel>`` and links act)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            found.append(node["text"])
        for value in node.values():
            found.extend(_mrkdwn(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_mrkdwn(value))
    return found


def _discord_unescape(text: str) -> str:
    return re.sub(r"\\([\\`*_~|>#\-\[\]()<@!.:])", r"\1", text)


def _teams_texts(card: dict[str, Any]) -> list[str]:
    """What a person reads on an Adaptive Card: texts, labels and action titles."""
    return [
        str(n[k])
        for n in card_nodes(card)
        for k in ("text", "title", "label")
        if isinstance(n.get(k), str)
    ]


def _teams_titles(card: dict[str, Any]) -> list[str]:
    return [str(n.get("title")) for n in card_nodes(card) if n.get("type") == "Action.Submit"]
