"""The email channel against a real SMTP server on localhost (aiosmtpd): the server emails each
request, the tests read the received messages, follow their links and post MIME replies to the
inbound endpoint, and the agent's guarded call (core HTTP backend) sees the outcome."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from functionlayer import (
    ContactChannel,
    EmailContactChannel,
    FunctionLayer,
    call_id_scope,
)
from functionlayer.models import EmailRecipient

from packages.server.tests._live import layer_fixture
from tests._support.mail import Mailbox, smtp_server
from tests._support.servers import ServerFactory, ServerProcess, in_thread

INBOUND_SECRET = "inbound-test-secret"
SENDER = "FunctionLayer <approvals@fl.example>"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    with smtp_server(box) as port:
        box.port = port  # type: ignore[attr-defined]
        yield box


def smtp_env(mailbox: Mailbox, **extra: str) -> dict[str, str]:
    env = {
        "FUNCTIONLAYER_SERVER_SMTP_HOST": "127.0.0.1",
        "FUNCTIONLAYER_SERVER_SMTP_PORT": str(mailbox.port),  # type: ignore[attr-defined]
        "FUNCTIONLAYER_SERVER_SMTP_STARTTLS": "false",
        "FUNCTIONLAYER_SERVER_EMAIL_FROM": SENDER,
        "FUNCTIONLAYER_SERVER_EMAIL_INBOUND_SECRET": INBOUND_SECRET,
        "FUNCTIONLAYER_SERVER_SCHEDULER_INTERVAL_SECONDS": "0.2",
    }
    env.update(extra)
    return env


ROUTED_DOMAIN = "routed.example"
"""The operator's policy lets requests be emailed to any address at this domain, though nobody
there is in the directory (so they may receive, never decide)."""


@pytest.fixture(scope="module")
def live(
    module_server_factory: ServerFactory,
    mailbox: Mailbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    policy = tmp_path_factory.mktemp("email-policy") / "policy.toml"
    policy.write_text(f'[projects.default]\nemail_domains = ["{ROUTED_DOMAIN}"]\n')
    return module_server_factory(
        env=smtp_env(mailbox, FUNCTIONLAYER_SERVER_POLICY_FILE=str(policy))
    )


fl = layer_fixture("email-test")


# -- helpers ---------------------------------------------------------------------------------


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "expected text and HTML parts"
    return str(text.get_content()), str(html.get_content())


def link(message: EmailMessage, label: str) -> str:
    text, _ = parts(message)
    found = re.search(rf"^{label}: (\S+)\s*$", text, re.MULTILINE)
    assert found, f"no {label!r} link in:\n{text}"
    return found.group(1)


def reply(
    to: EmailMessage,
    *,
    sender: str,
    body: str,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A reply the way a mail client writes it: threading headers, quoted original."""
    message = EmailMessage()
    message["From"] = f"Someone <{sender}>"
    message["To"] = SENDER
    message["Subject"] = f"Re: {to['Subject']}"
    message["Message-ID"] = email.utils.make_msgid(domain="client.example")
    message["In-Reply-To"] = to["Message-ID"]
    message["References"] = to["Message-ID"]
    for name, value in (headers or {}).items():
        message[name] = value
    original, _ = parts(to)
    quoted = "\n".join("> " + line for line in original.splitlines())
    message.set_content(
        f"{body}\n\nOn Sat, 21 Nov 2026 at 17:00, FunctionLayer <approvals@fl.example> wrote:\n"
        f"{quoted}\n"
    )
    return message.as_bytes()


def post_reply(server: ServerProcess, raw: bytes, secret: str = INBOUND_SECRET) -> httpx.Response:
    return httpx.post(
        server.base_url + "/email/inbound",
        content=raw,
        headers={"Content-Type": "message/rfc822", "X-FunctionLayer-Inbound-Secret": secret},
        timeout=10,
    )


def status(server: ServerProcess, call_id: str, kind: str = "function_calls") -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/{kind}/{call_id}")
        response.raise_for_status()
        return dict(response.json()["status"] or {})


def audit(server: ServerProcess, call_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        server.api_base + "/audit.jsonl",
        params={"call_id": call_id},
        headers=server.headers(),
        timeout=10,
    )
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def create_call(
    server: ServerProcess, channel: EmailContactChannel, fn: str = "wire", **kwargs: Any
) -> str:
    call_id = f"{fn}-{uuid.uuid4().hex[:10]}"
    body = {
        "run_id": "email-test",
        "call_id": call_id,
        "spec": {
            "fn": fn,
            "kwargs": kwargs or {"amount": 10},
            "channel": {"email": channel.model_dump(exclude_none=True)},
        },
    }
    with server.client() as client:
        client.post("/function_calls", json=body).raise_for_status()
    return call_id


def unique(live: ServerProcess, name: str) -> str:
    """A fresh address of a fresh person of the directory (named like the address's local
    part): requests are routed, and replies count, only for directory members."""
    address = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    live.add_person(person_of(address), emails=[address])
    return address


def person_of(address: str) -> str:
    """The name of the person ``unique`` created for ``address``."""
    return address.partition("@")[0]


# -- the tests -------------------------------------------------------------------------------


def test_approve_link_confirms_on_get_and_decides_on_post(
    live: ServerProcess, fl: FunctionLayer, mailbox: Mailbox
) -> None:
    alice = unique(live, "alice")
    ran: list[tuple[str, int]] = []

    @fl.require_approval(ContactChannel(email=EmailContactChannel(address=alice)))
    def transfer(account: str, amount: int) -> str:
        """Move money."""
        ran.append((account, amount))
        return f"sent {amount} to {account}"

    call_id = f"transfer-{uuid.uuid4().hex[:8]}"

    def agent() -> Any:
        with call_id_scope(call_id):
            return transfer("ACME-1", 250)

    join = in_thread(agent)
    message = mailbox.request_to(alice, call_id)
    text, html = parts(message)
    assert "transfer" in text and "amount: 250" in text and "ACME-1" in text
    assert "email-test" in text and call_id in text  # run id, call id
    assert "transfer" in html and "ACME-1" in html
    approve = link(message, "Approve")

    # A mail scanner (or a curious human) fetching the link decides nothing.
    for _ in range(2):
        page = httpx.get(approve, timeout=10)
        assert page.status_code == 200
        assert "Approve this call?" in page.text and 'method="post"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
    assert status(live, call_id).get("approved") is None
    assert ran == []

    decided = httpx.post(approve, timeout=10)
    assert decided.status_code == 200, decided.text
    assert "Approved" in decided.text
    assert join() == "sent 250 to ACME-1"
    assert ran == [("ACME-1", 250)]
    final = status(live, call_id)
    assert final["approved"] is True
    assert final["responded_by"] == person_of(alice) and final["responded_via"] == "email"

    # The link works once: a second POST (or GET) is refused and changes nothing.
    again = httpx.post(approve, timeout=10)
    assert again.status_code == 409 and "already" in again.text.lower()
    assert httpx.get(approve, timeout=10).status_code == 409
    actions = [e["action"] for e in audit(live, call_id)]
    assert actions.count("approved") == 1 and actions.count("link_used") == 1
    assert "delivered" in actions

    # The decision is confirmed in the same thread.
    confirmation = mailbox.wait_for(
        lambda r, m: alice in r and m["In-Reply-To"] == message["Message-ID"]
    )
    assert "Approved by " + person_of(alice) in parts_text(confirmation)


def parts_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_reply_rejects_with_exactly_that_feedback(
    live: ServerProcess, fl: FunctionLayer, mailbox: Mailbox
) -> None:
    alice = unique(live, "alice")
    ran: list[int] = []

    @fl.require_approval(ContactChannel(email=EmailContactChannel(address=alice)))
    def refund(amount: int) -> str:
        ran.append(amount)
        return "refunded"

    call_id = f"refund-{uuid.uuid4().hex[:8]}"

    def agent() -> Any:
        with call_id_scope(call_id):
            return refund(99)

    join = in_thread(agent)
    message = mailbox.request_to(alice, call_id)
    raw = reply(message, sender=alice, body="no, wrong account\n\n-- \nAlice Example\nFinance")
    response = post_reply(live, raw)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "rejected"
    assert join() == "User denied refund with feedback: no, wrong account"
    assert ran == []
    # A second reply cannot change the decision.
    late = post_reply(live, reply(message, sender=alice, body="yes"))
    assert late.status_code == 409
    assert status(live, call_id)["approved"] is False


def test_reply_from_anyone_else_is_refused_and_audited(
    live: ServerProcess, mailbox: Mailbox
) -> None:
    alice, bob, hidden = unique(live, "alice"), unique(live, "bob"), unique(live, "hidden")
    channel = EmailContactChannel(
        address=alice,
        additional_recipients=[
            EmailRecipient(address=bob, field="cc"),
            EmailRecipient(address=hidden, field="bcc"),
        ],
    )
    call_id = create_call(live, channel, fn="delete_repo", repo="prod")
    message = mailbox.request_to(alice, call_id)
    assert alice in message["To"] and bob in message["Cc"]
    assert hidden not in str(message)  # bcc never shows in headers
    assert mailbox.request_to(hidden, call_id)["Message-ID"] != message["Message-ID"]

    forged = post_reply(live, reply(message, sender="mallory@evil.example", body="yes"))
    assert forged.status_code == 403
    assert status(live, call_id).get("approved") is None
    refused = [e for e in audit(live, call_id) if e["action"] == "answer_refused"]
    assert refused and refused[0]["who"] == "mallory@evil.example"

    wrong_secret = post_reply(live, reply(message, sender=alice, body="yes"), secret="guess")
    assert wrong_secret.status_code == 401
    assert status(live, call_id).get("approved") is None

    # Out-of-office replies from an addressed recipient never decide either.
    ooo = post_reply(
        live,
        reply(message, sender=alice, body="I am away", headers={"Auto-Submitted": "auto-replied"}),
    )
    assert ooo.status_code == 200 and ooo.json()["code"] == "ignored"
    assert status(live, call_id).get("approved") is None

    # Each recipient has their own copy (own Message-ID): a reply counts only from the
    # recipient of the copy it threads to, even from another addressee.
    bob_copy = mailbox.request_to(bob, call_id)
    assert bob_copy["Message-ID"] != message["Message-ID"]
    as_someone_else = post_reply(live, reply(bob_copy, sender=alice, body="yes"))
    assert as_someone_else.status_code == 403
    assert status(live, call_id).get("approved") is None
    refused = [e for e in audit(live, call_id) if e["action"] == "answer_refused"]
    assert [e["who"] for e in refused][-1] == alice

    # A cc'd recipient may answer: "Yes" approves, by them, via email.
    ok = post_reply(live, reply(bob_copy, sender=bob, body="Yes\nlooks fine"))
    assert ok.status_code == 200 and ok.json()["code"] == "approved"
    final = status(live, call_id)
    assert final["approved"] is True and final["responded_by"] == person_of(bob)
    assert final["comment"] == "looks fine"


def test_reply_answers_a_human_contact(
    live: ServerProcess, fl: FunctionLayer, mailbox: Mailbox
) -> None:
    carol = unique(live, "carol")
    ask = fl.human_as_tool(ContactChannel(email=EmailContactChannel(address=carol)))
    join = in_thread(lambda: ask("Which colour should the button be?"))
    message = mailbox.wait_for(lambda r, m: carol in r and "question" in str(m["Subject"]).lower())
    text, html = parts(message)
    assert "Which colour should the button be?" in text and "Reply to this email" in text
    assert "Approve:" not in text  # nothing to approve, only to answer
    assert "Open in the inbox" in html
    response = post_reply(live, reply(message, sender=carol, body="The blue one, please."))
    assert response.status_code == 200 and response.json()["code"] == "responded"
    assert join() == "The blue one, please."


def test_routing_outside_the_directory(live: ServerProcess, mailbox: Mailbox) -> None:
    """The operator decides who may be emailed: an address that is neither a directory member
    of the project nor allowed by the policy file is refused at creation (422, nothing sent);
    an address the policy allows receives the request but, not being a person of the
    directory, cannot decide it by link or by reply."""
    stranger = f"stranger-{uuid.uuid4().hex[:8]}@elsewhere.example"
    call_id = f"refused-{uuid.uuid4().hex[:8]}"
    body = {
        "run_id": "email-test",
        "call_id": call_id,
        "spec": {"fn": "wire", "kwargs": {}, "channel": {"email": {"address": stranger}}},
    }
    with live.client() as client:
        refused = client.post("/function_calls", json=body)
        assert refused.status_code == 422 and refused.json()["code"] == "routing_refused"
        assert client.get(f"/function_calls/{call_id}").status_code == 404
    # A directory member in cc does not make a stranger acceptable either.
    member = unique(live, "member")
    body["spec"]["channel"] = {  # type: ignore[index]
        "email": {"address": member, "additional_recipients": [{"address": stranger}]}
    }
    with live.client() as client:
        refused = client.post("/function_calls", json=body)
        assert refused.status_code == 422 and refused.json()["code"] == "routing_refused"

    outsider = f"outsider-{uuid.uuid4().hex[:8]}@{ROUTED_DOMAIN}"
    call_id = create_call(live, EmailContactChannel(address=outsider), fn="wire")
    message = mailbox.request_to(outsider, call_id)
    approve = link(message, "Approve")
    assert httpx.post(approve, timeout=10).status_code == 403
    forbidden = post_reply(live, reply(message, sender=outsider, body="yes"))
    assert forbidden.status_code == 403
    assert status(live, call_id).get("approved") is None
    time.sleep(0.3)
    assert mailbox.to(stranger) == []


def test_tampered_and_foreign_links_are_refused(live: ServerProcess, mailbox: Mailbox) -> None:
    alice = unique(live, "alice")
    call_id = create_call(live, EmailContactChannel(address=alice), fn="drop_table")
    approve = link(mailbox.request_to(alice, call_id), "Approve")
    base, _, token = approve.rpartition("/")
    payload, _, signature = token.partition(".")

    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    forged_payload = payload[:-1] + ("x" if payload[-1] != "x" else "y")
    for bad in (f"{payload}.{flipped}", f"{forged_payload}.{signature}", "garbage", "a.b"):
        for method in ("GET", "POST"):
            page = httpx.request(method, f"{base}/{bad}", timeout=10)
            assert page.status_code == 400, (bad, method, page.text)
            assert "not valid" in page.text or "malformed" in page.text
    assert status(live, call_id).get("approved") is None
    assert "approved" not in [e["action"] for e in audit(live, call_id)]


def test_llm_text_is_escaped_in_the_html_part_and_pages(
    live: ServerProcess, mailbox: Mailbox
) -> None:
    alice = unique(live, "alice")
    payload = "<script>alert('pwned')</script><img src=x onerror=alert(1)>"
    call_id = create_call(live, EmailContactChannel(address=alice), fn="post_note", note=payload)
    message = mailbox.request_to(alice, call_id)
    text, html = parts(message)
    assert payload in text  # plain text shows it as written
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    page = httpx.get(link(message, "Approve"), timeout=10)
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all


def test_threading_headers_subject_and_open_link(live: ServerProcess, mailbox: Mailbox) -> None:
    alice = unique(live, "alice")
    channel = EmailContactChannel(
        address=alice,
        subject="Deploy approval\r\nBcc: victim@example.com",
        in_reply_to_message_id="<parent@mail.example>",
        references_message_id="<root@mail.example>",
        context_about_user="the release manager",
    )
    call_id = create_call(live, channel, fn="deploy")
    message = mailbox.request_to(alice, call_id)
    assert message["In-Reply-To"] == "<parent@mail.example>"
    assert message["References"].split() == ["<root@mail.example>", "<parent@mail.example>"]
    assert message["Subject"] == "Deploy approval Bcc: victim@example.com"  # no header injection
    assert message["Bcc"] is None
    msgid = message["Message-ID"]
    assert re.fullmatch(r"<fl-[0-9a-f]{32}@fl\.example>", msgid)
    assert "the release manager" in parts(message)[0]

    # "Open in the inbox" leads to the (login-protected) inbox page of that request.
    opened = httpx.get(link(message, "Open in the inbox"), timeout=10)
    assert opened.status_code == 303
    assert opened.headers["location"].endswith(f"/inbox/calls/{call_id}")


def test_replies_that_match_nothing_are_refused(live: ServerProcess, mailbox: Mailbox) -> None:
    stray = EmailMessage()
    stray["From"] = "alice@example.com"
    stray["Subject"] = "hello"
    stray["In-Reply-To"] = "<unknown@fl.example>"
    stray.set_content("yes")
    assert post_reply(live, stray.as_bytes()).status_code == 404
    assert post_reply(live, b"").status_code == 400


def test_an_address_that_smuggles_recipients_is_never_sent_to(
    live: ServerProcess, mailbox: Mailbox
) -> None:
    alice, evil = unique(live, "alice"), unique(live, "evil")
    # Routing sees the whole string, which is no member's address: refused at creation.
    body = {
        "run_id": "email-test",
        "call_id": f"smuggle-{uuid.uuid4().hex[:8]}",
        "spec": {"fn": "pay", "kwargs": {}, "channel": {"email": {"address": f"{alice}, {evil}"}}},
    }
    with live.client() as client:
        refused = client.post("/function_calls", json=body)
        assert refused.status_code == 422 and refused.json()["code"] == "routing_refused"
    # Even where the operator's policy allows the domain, delivery refuses the smuggled list.
    tag = uuid.uuid4().hex[:8]
    alice, evil = f"alice-{tag}@{ROUTED_DOMAIN}", f"evil-{tag}@{ROUTED_DOMAIN}"
    call_id = create_call(live, EmailContactChannel(address=f"{alice}, {evil}"), fn="pay")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        failed = [e for e in audit(live, call_id) if e["action"] == "delivery_failed"]
        if failed:
            break
        time.sleep(0.1)
    assert failed and "not a plain email address" in failed[0]["details"]["error"]
    assert mailbox.to(alice) == [] and mailbox.to(evil) == []
    assert status(live, call_id).get("approved") is None  # still pending: fail closed


def test_arguments_too_long_for_an_email_cannot_be_approved_by_email(
    live: ServerProcess, mailbox: Mailbox
) -> None:
    """Over 50,000 characters of arguments: the email shows the beginning, has no Approve link,
    and an 'approve' reply decides nothing (refused and audited); the inbox decides."""
    alice = unique(live, "alice")
    call_id = create_call(
        live, EmailContactChannel(address=alice), to="eve\u200b@evil.example", body="x" * 50_100
    )
    message = mailbox.request_to(alice, call_id)
    text, html = parts(message)
    assert "eve⟨U+200B⟩@evil.example" in text and "\u200b" not in text
    assert "cannot approve" in text and "truncated" in text
    assert "Approve:" not in text and ">Approve</a>" not in html
    assert "Open in the inbox:" in text
    response = post_reply(live, reply(message, sender=alice, body="approve"))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "arguments_not_shown"
    assert status(live, call_id).get("approved") is None
    refused = [e for e in audit(live, call_id) if e["action"] == "answer_refused"]
    assert refused and "every argument" in json.dumps(refused)
    # Any other reply still rejects with that feedback.
    rejected = post_reply(live, reply(message, sender=alice, body="no: far too long"))
    assert rejected.status_code == 200 and rejected.json()["code"] == "rejected"
