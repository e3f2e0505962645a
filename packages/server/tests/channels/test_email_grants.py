"""Grants from email ("Approve and allow similar calls…"), against a hostile agent, on SQLite
and PostgreSQL, sending through a real SMTP server on localhost: the grant link is in the
email only where the operator's policy allows grants for the function; GET shows every preset's
scope in full and decides nothing; POST approves and records the grant as the recipient's
person with ``via = "email"``, once. A forged, replayed or crafted link makes no grant, and an
agent token opens nothing."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
import time
import uuid
from email.message import EmailMessage

import pytest
from functionlayer_server._channels._email_links import LinkSigner

from packages.server.tests.channels._grants import GRANT_RULES
from tests._support.inprocess import InProcess, app_fixture
from tests._support.mail import Mailbox

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

POLICY = GRANT_RULES
GRANT_LINE = re.compile(r"^Approve and allow similar calls.*: http://testserver(\S+)\s*$", re.M)
SECRET = "email-grants-test-secret"
LAST: list[str] = []
PICKS = {"scope": "upto:amount", "agents": "project", "lifetime": "1d", "uses": "5"}


app = app_fixture(policy=POLICY, mail=True, secret_key=SECRET)


async def _request(
    app: InProcess, box: Mailbox, fn: str, kwargs: dict[str, object]
) -> tuple[str, str, dict[str, str]]:
    """(call id, the plain-text email, the agent's headers); the recipient is ``LAST[0]``."""
    name = f"alice-{uuid.uuid4().hex[:6]}"
    address = f"{name}@example.com"
    await app.service.accounts.create_person(name, emails=[address])
    LAST[:] = [address]
    agent = await app.agent()
    call_id = f"{fn}-{uuid.uuid4().hex[:6]}"
    created = await app.create(agent, call_id, fn, kwargs, channel={"email": {"address": address}})
    assert created.status_code == 200, created.text
    message: EmailMessage = await asyncio.to_thread(
        box.wait_for, lambda r, m: address in r and m["X-FunctionLayer-Call-Id"] == call_id
    )
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return call_id, str(body.get_content()), agent


async def _grants(app: InProcess, call_id: str) -> list[object]:
    rows = await app.service.store.list_grants(project="default")
    return [g for g in rows if g.source_call_id == call_id]


async def _approved(app: InProcess, call_id: str) -> bool | None:
    status = (await app.service.get_function_call(call_id)).status
    return None if status is None else status.approved


async def test_the_grant_link_shows_the_scope_and_grants_once_via_email(
    app: InProcess, mailbox: tuple[Mailbox, int]
) -> None:
    call_id, text, _ = await _request(app, mailbox[0], "pay", {"to": "acme", "amount": 120})
    found = GRANT_LINE.search(text)
    assert found, text
    link = found.group(1)

    page = await app.client.get(link)
    assert page.status_code == 200, page.text
    shown = html.unescape(page.text)
    assert 'to == "acme"\namount == 120' in shown and 'to == "acme"\namount <= 120' in shown
    assert await _approved(app, call_id) is None  # GET decides nothing

    made = await app.client.post(link, data=PICKS)
    assert made.status_code == 200, made.text
    assert await _approved(app, call_id) is True
    (grant,) = await _grants(app, call_id)
    assert json.loads(grant.scope) == ['to == "acme"', "amount <= 120"]  # type: ignore[attr-defined]
    assert grant.max_uses == 5 and grant.token_id is None  # type: ignore[attr-defined]
    trail = await app.service.audit_trail(call_id)
    assert [e.via for e in trail if e.action == "granted"] == ["email"]

    # The link works once: replayed, it makes nothing more.
    again = await app.client.post(link, data=PICKS)
    assert again.status_code == 409, again.text
    assert len(await _grants(app, call_id)) == 1
    # The grant covers a smaller payment to acme from another agent of the project.
    later = f"later-{uuid.uuid4().hex[:6]}"
    other = await app.agent()
    await app.create(other, later, "pay", {"to": "acme", "amount": 50})
    assert (await app.status(other, later))["approved"] is True


@pytest.mark.parametrize("fn", ["nogrant", "twice", "wipe"])
async def test_no_grant_link_where_the_policy_forbids_grants(
    app: InProcess, mailbox: tuple[Mailbox, int], fn: str
) -> None:
    call_id, text, _ = await _request(app, mailbox[0], fn, {"to": "acme", "amount": 120})
    assert not GRANT_LINE.search(text), text
    # A crafted grant link cannot be signed without the server's key; a grant link of another
    # call cannot name this one. So take the only signed link there is for this call (open or
    # approve) and send it to the grant form: it grants nothing.
    for path in re.findall(r"http://testserver(/email/links/\S+)", text):
        answer = await app.client.post(path, data=PICKS)
        assert answer.status_code != 200 or "granted" not in answer.text.lower()
    assert not await _grants(app, call_id)


async def test_a_grant_link_for_a_forbidden_function_makes_nothing(
    app: InProcess, mailbox: tuple[Mailbox, int]
) -> None:
    """The server signs a grant link for a call whose policy forbids grants (as a stale link
    would be, after the operator turned grants off): the page and the POST refuse."""
    call_id, _text, _ = await _request(app, mailbox[0], "nogrant", {"to": "acme", "amount": 1})
    token = LinkSigner(SECRET).sign(
        kind="function_call",
        call_id=call_id,
        action="grant",
        recipient=LAST[0],
        expires_at=time.time() + 600,
    )
    assert (await app.client.get(f"/email/links/{token}")).status_code == 403
    answer = await app.client.post(f"/email/links/{token}", data={**PICKS, "scope": "exact"})
    assert answer.status_code == 403, answer.text
    assert await _approved(app, call_id) is None
    assert not await _grants(app, call_id)


async def test_forged_links_and_agent_tokens_make_no_grant(
    app: InProcess, mailbox: tuple[Mailbox, int]
) -> None:
    call_id, text, agent = await _request(app, mailbox[0], "pay", {"to": "forge", "amount": 3})
    found = GRANT_LINE.search(text)
    assert found
    body = {
        "k": "function_call",
        "c": call_id,
        "a": "grant",
        "r": "agent@example.com",
        "e": int(time.time()) + 3600,
        "n": "0123456789abcdef",
    }
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    real_signature = found.group(1).rpartition(".")[2]
    for token in (f"{payload}.", f"{payload}.{real_signature}"):
        answer = await app.client.post(f"/email/links/{token}", data=PICKS, headers=agent)
        assert answer.status_code == 400, answer.text
    # The agent's own token on the real link's page is no login: it is still the link that
    # counts, and presets outside the offer are refused before anything is used up.
    wide = await app.client.post(found.group(1), data={**PICKS, "lifetime": "3650d"}, headers=agent)
    assert wide.status_code == 422, wide.text
    assert await _approved(app, call_id) is None
    assert not await _grants(app, call_id)
