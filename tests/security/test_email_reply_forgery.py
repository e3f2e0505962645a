"""The hostile agent against the email channel: an email reply is matched to the copy it answers
by that copy's Message-ID, so an agent that could read a Message-ID could mail the approvals
address "From: alice" threading to it and approve as alice. Nothing an agent token can read
may carry one, and a reply to a message whose id was ever readable decides nothing.

In process (ASGI) on real SQLite and PostgreSQL, sending over a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer_server import create_app
from functionlayer_server._settings import Settings

from tests._support.mail import Mailbox, smtp_mailbox
from tests._support.servers import fresh_postgres_database

INBOUND = {"Authorization": "Bearer inbound-s3cret"}
# Any Message-ID this server makes: "<fl-" and 32 hex digits.
SERVER_MSGID = re.compile(r"fl-[0-9a-f]{32}@[A-Za-z0-9.-]+")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_mailbox() as box:
        yield box


class Server:
    def __init__(self, client: httpx.AsyncClient, service: Any, agent_token: str) -> None:
        self.client = client
        self.service = service
        self.agent = {"Authorization": f"Bearer {agent_token}"}

    async def person(self, name: str) -> str:
        unique = f"{name}-{uuid.uuid4().hex[:6]}"
        address = f"{unique}@corp.example"
        await self.service.accounts.create_person(unique, emails=[address])
        return address

    async def create_call(self, address: str) -> str:
        call_id = f"wire-{uuid.uuid4().hex[:8]}"
        made = await self.client.post(
            "/functionlayer/v1/function_calls",
            json={
                "run_id": "hostile",
                "call_id": call_id,
                "spec": {
                    "fn": "wire_money",
                    "kwargs": {"amount": 1_000_000},
                    "channel": {"email": {"address": address}},
                },
            },
            headers=self.agent,
        )
        assert made.status_code == 200, made.text
        return call_id

    async def status(self, call_id: str) -> dict[str, Any]:
        got = await self.client.get(
            f"/functionlayer/v1/function_calls/{call_id}", headers=self.agent
        )
        return dict(got.json()["status"] or {})

    async def everything_the_agent_reads(self, call_id: str) -> str:
        """Every answer about the request an agent token gets."""
        texts = []
        for path in (
            f"/functionlayer/v1/function_calls/{call_id}/audit",
            f"/functionlayer/v1/function_calls/{call_id}",
            "/functionlayer/v1/function_calls",
            f"/functionlayer/v1/audit.jsonl?call_id={call_id}",
            "/functionlayer/v1/audit.jsonl",
            f"/humanlayer/v1/function_calls/{call_id}",
        ):
            got = await self.client.get(path, headers=self.agent)
            assert got.status_code == 200, (path, got.text)
            texts.append(got.text)
        return "\n".join(texts)

    async def forged_reply(self, sender: str, msgid: str, text: str = "approve") -> httpx.Response:
        """What the agent mails the approvals address (and the mail service forwards)."""
        forged = EmailMessage()
        forged["From"] = sender
        forged["To"] = "approvals@fl.example"
        forged["Subject"] = "Re: Approval needed: wire_money"
        forged["In-Reply-To"] = f"<{msgid}>"
        forged["References"] = f"<{msgid}>"
        forged.set_content(text + "\n")
        return await self.client.post("/email/inbound", content=forged.as_bytes(), headers=INBOUND)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def server(
    request: pytest.FixtureRequest, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> AsyncIterator[Server]:
    _, port = mailbox
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            database_url = stack.enter_context(fresh_postgres_database())
        else:
            database_url = f"sqlite:///{tmp_path / 'fl.sqlite3'}"
        settings = Settings(
            database_url=database_url,
            public_url="http://testserver",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
            email_from="approvals@fl.example",
            email_inbound_secret="inbound-s3cret",
            scheduler_interval_seconds=0.05,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            service = app.state.service
            token = await service.create_token("agent")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Server(c, service, token)


async def received(box: Mailbox, address: str, call_id: str) -> EmailMessage:
    return await asyncio.to_thread(
        box.wait_for, lambda r, m: address in r and m["X-FunctionLayer-Call-Id"] == call_id
    )


@pytest.mark.anyio
async def test_agent_reads_no_reply_id_and_cannot_forge_a_reply(
    server: Server, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    alice = await server.person("alice")
    call_id = await server.create_call(alice)
    copy = await received(box, alice, call_id)
    real_id = str(copy["Message-ID"]).strip("<>")

    # Everything the agent can read about the request: the delivery is there, its id is not.
    readable = await server.everything_the_agent_reads(call_id)
    assert '"delivered"' in readable
    assert alice in readable  # recipients are the agent's own routing data; ids are not
    assert real_id not in readable
    assert SERVER_MSGID.findall(readable) == []

    # The agent forges alice's approval with every id it could find, and with made-up ones.
    guesses = [*SERVER_MSGID.findall(readable), f"fl-{'0' * 32}@fl.example", call_id]
    for guess in guesses:
        forged = await server.forged_reply(alice, guess)
        assert forged.status_code in (403, 404), forged.text
    status = await server.status(call_id)
    assert status.get("approved") is None and not status.get("approvals")

    # Alice's own reply, threading to her copy, still decides.
    genuine = await server.forged_reply(alice.upper(), real_id, "approve\nfine")
    assert genuine.status_code == 200 and genuine.json()["code"] == "approved", genuine.text
    assert (await server.status(call_id))["approved"] is True


@pytest.mark.anyio
async def test_a_reply_to_a_message_whose_id_was_readable_decides_nothing(
    server: Server, mailbox: tuple[Mailbox, int]
) -> None:
    """A message sent by an earlier server, which kept its id in the agent-readable audit: the
    agent may know that id, so a reply threading to it is refused and audited."""
    box, _ = mailbox
    alice = await server.person("alice")
    call_id = await server.create_call(alice)
    await received(box, alice, call_id)
    leaked = f"fl-{uuid.uuid4().hex}@fl.example"
    # The reply mapping exactly as the earlier server wrote it (and the id as its audit showed).
    await server.service.store.remember(
        "email-msgid:" + leaked,
        {"kind": "function_call", "call_id": call_id, "recipient": alice},
    )
    forged = await server.forged_reply(alice, leaked)
    assert forged.status_code == 403, forged.text
    assert "sent before reply ids were kept private" in forged.json()["detail"]
    status = await server.status(call_id)
    assert status.get("approved") is None and not status.get("approvals")
    audit = await server.client.get(
        f"/functionlayer/v1/function_calls/{call_id}/audit", headers=server.agent
    )
    refused = [e for e in audit.json()["items"] if e["action"] == "answer_refused"]
    assert [(e["who"], e["via"]) for e in refused] == [(alice, "email")]
    assert "sent before reply ids were kept private" in refused[0]["details"]["reason"]


@pytest.mark.anyio
async def test_ids_already_in_the_audit_are_not_shown(
    server: Server, mailbox: tuple[Mailbox, int]
) -> None:
    """An audit entry an earlier server wrote with the ids (and a link nonce) in its details is
    shown without them, on every surface an agent token reads."""
    box, _ = mailbox
    alice = await server.person("alice")
    call_id = await server.create_call(alice)
    await received(box, alice, call_id)
    old_id = f"<fl-{uuid.uuid4().hex}@fl.example>"
    nonce = uuid.uuid4().hex
    await server.service.record_audit(
        "function_call",
        call_id,
        who="functionlayer-server",
        via="email",
        action="delivered",
        details={"channel": "email", "data": {"message_ids": {alice: old_id}, "to": [alice]}},
    )
    await server.service.record_audit(
        "function_call",
        call_id,
        who=alice,
        via="email",
        action="link_used",
        details={"action": "open", "nonce": nonce},
    )
    readable = await server.everything_the_agent_reads(call_id)
    assert old_id.strip("<>") not in readable
    assert nonce not in readable
    assert '"link_used"' in readable and '"open"' in readable
