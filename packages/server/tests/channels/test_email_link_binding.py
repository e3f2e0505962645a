"""An email approve link decides only as the recipient of the copy it was sent in, and only
when the server signed it: a cc recipient's link approves as that cc recipient, never as the
first To address, and a link with its signature left empty is refused like any forgery.
In process, on SQLite and PostgreSQL, sending through a real SMTP server on localhost."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from email.message import EmailMessage

import pytest

from tests._support.inprocess import InProcess, app_fixture
from tests._support.mail import Mailbox

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


app = app_fixture(mail=True)


async def _person(app: InProcess, name: str) -> str:
    unique = f"{name}-{uuid.uuid4().hex[:6]}"
    address = f"{unique}@example.com"
    await app.service.accounts.create_person(unique, emails=[address])
    return address


async def _copy(box: Mailbox, address: str, call_id: str) -> str:
    """The plain-text body of the request email delivered to ``address``."""
    message: EmailMessage = await asyncio.to_thread(
        box.wait_for, lambda r, m: address in r and m["X-FunctionLayer-Call-Id"] == call_id
    )
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _approve_path(text: str) -> str:
    found = re.search(r"^Approve: http://testserver(\S+)\s*$", text, re.MULTILINE)
    assert found, text
    return found.group(1)


async def test_a_cc_recipients_link_approves_as_that_recipient(
    app: InProcess, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    alice = await _person(app, "alice")
    bob = await _person(app, "bob")
    agent = await app.agent()
    call_id = f"cc-{uuid.uuid4().hex[:6]}"
    channel = {
        "email": {"address": alice, "additional_recipients": [{"address": bob, "field": "cc"}]}
    }
    created = await app.create(agent, call_id, "release", {"version": "2.0"}, channel=channel)
    assert created.status_code == 200, created.text
    bob_link = _approve_path(await _copy(box, bob, call_id))
    assert bob_link != _approve_path(await _copy(box, alice, call_id))

    used = await app.client.post(bob_link)

    assert used.status_code == 200, used.text
    status = await app.status(agent, call_id)
    assert status["approved"] is True
    assert status["responded_by"] == bob.partition("@")[0]


async def test_a_link_with_an_empty_signature_decides_nothing(
    app: InProcess, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    alice = await _person(app, "alice")
    agent = await app.agent()
    call_id = f"forged-{uuid.uuid4().hex[:6]}"
    created = await app.create(
        agent, call_id, "wipe_disk", {}, channel={"email": {"address": alice}}
    )
    assert created.status_code == 200, created.text
    await _copy(box, alice, call_id)  # delivered; the forger never sees it
    # Anyone can write the payload of a link: it is only base64 JSON. The signature is the
    # only thing that makes it the server's.
    body = {
        "k": "function_call",
        "c": call_id,
        "a": "approve",
        "r": alice,
        "e": int(time.time()) + 3600,
        "n": "0123456789abcdef",
    }
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()

    for method in ("GET", "POST"):
        answer = await app.client.request(method, f"/email/links/{payload}.")
        assert answer.status_code >= 400, (method, answer.status_code, answer.text)
    status = await app.status(agent, call_id)
    assert status.get("approved") is None and status.get("responded_by") is None
