"""The email channel in-process with a controllable clock (link expiry, quorum by link), still
sending over a real SMTP server on localhost; and the reply parser on the shapes mail clients
produce."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer_server import create_app
from functionlayer_server._channels._email_inbound import is_approval, parse_reply, strip_quoted
from functionlayer_server._scheduler import ManualClock
from functionlayer_server._settings import Settings

from tests._support.mail import Mailbox

TTL = 3600.0


class App:
    def __init__(
        self, client: httpx.AsyncClient, clock: ManualClock, token: str, service: Any
    ) -> None:
        self.client = client
        self.clock = clock
        self.headers = {"Authorization": f"Bearer {token}"}
        self.service = service

    async def person(self, name: str, *extra: str) -> str:
        """A fresh person of the directory (requests route, and answers count, only for
        them) with a fresh address, and any ``extra`` addresses; returns the address."""
        unique = f"{name}-{uuid.uuid4().hex[:6]}"
        address = f"{unique}@example.com"
        await self.service.accounts.create_person(unique, emails=[address, *extra])
        return address

    async def create_call(self, spec: dict[str, Any]) -> str:
        call_id = f"{spec['fn']}-{uuid.uuid4().hex[:8]}"
        response = await self.client.post(
            "/functionlayer/v1/function_calls",
            json={"run_id": "inproc", "call_id": call_id, "spec": spec},
            headers=self.headers,
        )
        assert response.status_code in (200, 201), response.text
        return call_id

    async def status(self, call_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/functionlayer/v1/function_calls/{call_id}", headers=self.headers
        )
        return dict(response.json()["status"] or {})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def app(
    request: pytest.FixtureRequest, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> AsyncIterator[App]:
    """The app on SQLite, and on PostgreSQL (single use and reply mapping are SQL upserts)."""
    _, port = mailbox
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    settings = Settings(
        database_url=database_url,
        public_url="http://testserver",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        email_from="approvals@fl.example",
        email_link_ttl_seconds=TTL,
        email_inbound_secret="s3cret",
        scheduler_interval_seconds=0.05,
    )
    clock = ManualClock()
    fastapi_app = create_app(settings, clock=clock)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        service = fastapi_app.state.service
        token = await service.create_token("inproc")
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield App(client, clock, token, service)


def approve_link(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"^Approve: http://testserver(\S+)\s*$", str(body.get_content()), re.M)
    assert found
    return found.group(1)


async def received(box: Mailbox, address: str, call_id: str) -> EmailMessage:
    return await asyncio.to_thread(
        box.wait_for, lambda r, m: address in r and m["X-FunctionLayer-Call-Id"] == call_id
    )


@pytest.mark.anyio
async def test_an_expired_link_decides_nothing(app: App, mailbox: tuple[Mailbox, int]) -> None:
    box, _ = mailbox
    alice = await app.person("alice")
    call_id = await app.create_call(
        {"fn": "wipe_disk", "kwargs": {}, "channel": {"email": {"address": alice}}}
    )
    path = approve_link(await received(box, alice, call_id))
    app.clock.advance(TTL - 5)
    assert (await app.client.get(path)).status_code == 200  # still valid just before expiry
    app.clock.advance(10)
    for method in ("GET", "POST"):
        page = await app.client.request(method, path)
        assert page.status_code == 410 and "expired" in page.text
    assert (await app.status(call_id)).get("approved") is None


@pytest.mark.anyio
async def test_quorum_counts_each_recipients_link(app: App, mailbox: tuple[Mailbox, int]) -> None:
    box, _ = mailbox
    alice_work = f"alice-work-{uuid.uuid4().hex[:6]}@example.com"
    alice = await app.person("alice", alice_work)  # one person, two addresses
    bob = await app.person("bob")
    call_id = await app.create_call(
        {
            "fn": "release",
            "kwargs": {"version": "2.0"},
            "policy": {
                "approvals_required": 2,
                "channels": [
                    {"email": {"address": alice}},
                    {"email": {"address": alice_work}},
                    {"email": {"address": bob}},
                ],
            },
        }
    )
    alice_link = approve_link(await received(box, alice, call_id))
    alice_work_link = approve_link(await received(box, alice_work, call_id))
    bob_link = approve_link(await received(box, bob, call_id))
    assert len({alice_link, alice_work_link, bob_link}) == 3

    first = await app.client.post(alice_link)
    assert first.status_code == 200 and "1 of 2" in first.text
    assert (await app.status(call_id)).get("approved") is None
    # Alice cannot count twice by clicking again, nor through her other address.
    assert (await app.client.post(alice_link)).status_code == 409
    assert (await app.status(call_id)).get("approved") is None
    assert (await app.client.post(alice_work_link)).status_code == 409
    assert (await app.status(call_id)).get("approved") is None

    second = await app.client.post(bob_link)
    assert second.status_code == 200
    final = await app.status(call_id)
    names = [address.partition("@")[0] for address in (alice, bob)]
    assert final["approved"] is True and final["approvals"] == names


@pytest.mark.anyio
async def test_reply_is_matched_by_its_message_id(app: App, mailbox: tuple[Mailbox, int]) -> None:
    box, _ = mailbox
    alice = await app.person("alice")
    call_id = await app.create_call(
        {"fn": "rotate_keys", "kwargs": {}, "channel": {"email": {"address": alice}}}
    )
    sent = await received(box, alice, call_id)
    reply = EmailMessage()
    reply["From"] = alice.upper()  # addresses compare case-insensitively
    reply["References"] = f"<other@x.example> {sent['Message-ID']}"
    reply.set_content("not during business hours\n\n> Approval needed: rotate_keys\n")
    response = await app.client.post(
        "/email/inbound",
        content=reply.as_bytes(),
        headers={"Authorization": "Bearer s3cret"},
    )
    assert response.status_code == 200 and response.json()["code"] == "rejected"
    final = await app.status(call_id)
    assert final["approved"] is False and final["comment"] == "not during business hours"
    assert final["responded_by"] == alice.partition("@")[0] and final["responded_via"] == "email"


@pytest.mark.anyio
async def test_inbound_needs_the_shared_secret(app: App) -> None:
    response = await app.client.post("/email/inbound", content=b"From: a@b.example\n\nyes")
    assert response.status_code == 401
    response = await app.client.post(
        "/email/inbound?secret=s3cret", content=b"From: a@b.example\n\nyes"
    )
    assert response.status_code == 404 and response.json()["code"] == "no_request"


# -- reply parsing -------------------------------------------------------------------------------


def test_strip_quoted_handles_common_clients() -> None:
    gmail = "no, wrong account\n\nOn Sat, 21 Nov 2026 at 17:00, Bot <b@x.example>\nwrote:\n> hi\n"
    assert strip_quoted(gmail) == "no, wrong account"
    outlook = (
        "Please use the EU account.\r\n\r\n________________________________\r\n"
        "From: FunctionLayer\r\nSent: Saturday\r\n"
    )
    assert strip_quoted(outlook) == "Please use the EU account."
    signature = "approve\nfine by me\n-- \nAlice\n+1 555"
    assert strip_quoted(signature) == "approve\nfine by me"
    inline = "> quoted\nmy answer\n> more quoted"
    assert strip_quoted(inline) == "my answer"


def test_first_line_decides() -> None:
    assert is_approval("Approve") == (True, None)
    assert is_approval("yes.\nship it") == (True, "ship it")
    assert is_approval("Y") == (True, None)
    assert is_approval("yes, but not today") == (False, None)
    assert is_approval("no") == (False, None)


def test_html_only_reply_drops_the_quoted_block() -> None:
    message = EmailMessage()
    message["From"] = "Alice <Alice@Example.com>"
    message["In-Reply-To"] = "<fl-abc@fl.example>"
    message["References"] = "<root@x> <fl-abc@fl.example>"
    message.set_content(
        "<div>Not this one&amp;that</div><div class='gmail_quote'>On ... wrote:"
        "<blockquote>Approve: http://x</blockquote></div>",
        subtype="html",
    )
    parsed = parse_reply(message.as_bytes())
    assert parsed.sender == "alice@example.com"
    assert parsed.message_ids == ["fl-abc@fl.example", "root@x"]
    assert parsed.text == "Not this one&that"


def test_email_from_defaults_and_channel_is_off_without_smtp(tmp_path: Path) -> None:
    on = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", smtp_host="127.0.0.1"))
    assert [c.name for c in on.state.channels.channels if c.name == "email"] == ["email"]
    off = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"))
    assert all(c.name != "email" for c in off.state.channels.channels)
    paths = {getattr(r, "path", "") for r in off.routes}
    assert "/email/inbound" not in paths


@pytest.mark.anyio
async def test_irreversible_call_approves_only_through_the_confirmation_page(
    app: App, mailbox: tuple[Mailbox, int]
) -> None:
    """A reply "approve" cannot approve an irreversible function (the server refuses an
    approval without its second step); the link's confirmation page can. The agent's context
    is in the email under its label, escaped in the HTML part."""
    box, _ = mailbox
    alice = await app.person("alice")
    call_id = await app.create_call(
        {
            "fn": "drop_table",
            "kwargs": {"name": "users"},
            "irreversible": True,
            "channel": {"email": {"address": alice}},
            "context": {"user_request": "<b>drop</b> it \u202etxt.exe"},
        }
    )
    sent = await received(box, alice, call_id)
    text = sent.get_body(preferencelist=("plain",))
    html = sent.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "From the agent — may be wrong or injected:" in str(text.get_content())
    assert "> <b>drop</b> it ⟨U+202E⟩txt.exe" in str(text.get_content())
    assert "IRREVERSIBLE" in str(text.get_content())
    assert "&lt;b&gt;drop&lt;/b&gt;" in str(html.get_content())

    reply = EmailMessage()
    reply["From"] = alice
    reply["References"] = sent["Message-ID"]
    reply.set_content("approve\n")
    response = await app.client.post(
        "/email/inbound", content=reply.as_bytes(), headers={"Authorization": "Bearer s3cret"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "confirmation_required"
    assert (await app.status(call_id)).get("approved") is None

    path = approve_link(sent)
    page = await app.client.get(path)
    assert page.status_code == 200 and "cannot be undone" in page.text
    assert (await app.status(call_id)).get("approved") is None
    confirmed = await app.client.post(path)
    assert confirmed.status_code == 200, confirmed.text
    assert (await app.status(call_id))["approved"] is True
