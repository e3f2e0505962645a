"""Channels decide only for the people and the links meant to: Slack enforces the policy's
responders, an email link works once, and an "open" link never decides. In process (one app for
the module, TestClient), with the Slack Web API double and a real SMTP server on localhost."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from functionlayer import FunctionCall
from functionlayer.models import FunctionCallStatus

from packages.server.tests.channels._app import InProcessApp, in_process, slack_settings
from packages.server.tests.channels.conftest import SIGNING_SECRET
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    block_actions,
    interaction_body,
    slack_headers,
)
from packages.server.tests.channels.test_email import Mailbox
from tests._support.inbox import csrf_of, log_in, person_decides
from tests._support.mail import email_settings, smtp_server

pytestmark = pytest.mark.timeout(60)


@dataclass
class App(InProcessApp):
    token: str
    mailbox: Mailbox
    slack: SlackDouble

    def create(self, call_id: str, **spec: Any) -> None:
        spec.setdefault("kwargs", {})
        response = self.client.post(
            "/functionlayer/v1/function_calls",
            json={"run_id": "channels", "call_id": call_id, "spec": spec},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text

    def status(self, call_id: str) -> FunctionCallStatus:
        call = self.run(self.service.get_function_call, call_id)
        assert call.status is not None
        return call.status

    def audit(self, call_id: str) -> list[Any]:
        return list(self.run(self.service.audit_trail, call_id))


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, module_slack_double: SlackDouble
) -> Iterator[App]:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        directory = tmp_path_factory.mktemp("channels")
        settings = slack_settings(directory, module_slack_double, **email_settings(port))
        with in_process(settings) as (client, service):
            box = App(client, service, "", mailbox, module_slack_double)
            box.token = box.run(service.create_token, "agent")
            box.run(service.accounts.create_person, "boss", slack_ids=["U0BOSS"])
            box.run(service.accounts.create_person, "intern", slack_ids=["U0INTERN"])
            yield box


# -- Slack: the policy's responders ------------------------------------------------------------


def _posted(app: App, call_id: str) -> SlackCall:
    return app.slack.wait_for(
        "chat.postMessage", where=lambda c: f"`{call_id}`" in c.blocks_json()
    )[-1]


def _click(app: App, payload: dict[str, Any]) -> None:
    body = interaction_body(payload)
    response = app.client.post(
        "/slack/interactions", content=body, headers=slack_headers(body, SIGNING_SECRET)
    )
    assert response.status_code == 200, response.text


def test_slack_refuses_a_channel_member_outside_the_policys_responders(app: App) -> None:
    call_id = f"slack-policy-{uuid.uuid4().hex[:6]}"
    # Everyone in #ops sees the message, but the policy names the only person who may decide.
    app.create(
        call_id,
        fn="drop_table",
        channel={"slack": {"channel_or_user_id": "C-OPS"}},
        policy={"responders": ["U0BOSS"]},
    )
    message = _posted(app, call_id)

    _click(app, block_actions(message, "U0INTERN", "fl_approve"))

    assert app.status(call_id).approved is None
    refused = [e for e in app.audit(call_id) if e.action == "refused"]
    assert [(e.who, e.via) for e in refused] == [("slack:U0INTERN", "slack")]
    assert "not among the persons allowed to decide" in refused[0].details["reason"]

    _click(app, block_actions(message, "U0BOSS", "fl_approve"))
    decided = app.status(call_id)
    assert decided.approved is True and decided.responded_by == "boss"


# -- email links -------------------------------------------------------------------------------


def _request_email(app: App, address: str, call_id: str) -> str:
    message: EmailMessage = app.mailbox.request_to(address, call_id)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _link(text: str, label: str) -> str:
    found = re.search(rf"^{label}: http://testserver(\S+)\s*$", text, re.MULTILINE)
    assert found, f"no {label!r} link in:\n{text}"
    return found.group(1)


def test_an_email_open_link_only_opens_the_inbox_and_never_decides(app: App) -> None:
    address = f"alice-{uuid.uuid4().hex[:6]}@example.com"
    app.run(app.service.accounts.create_person, address.split("@")[0], emails=[address])
    call_id = f"email-open-{uuid.uuid4().hex[:6]}"
    app.create(call_id, fn="wipe_disk", channel={"email": {"address": address}})
    open_link = _link(_request_email(app, address, call_id), "Open in the inbox")

    shown = app.client.get(open_link, follow_redirects=False)
    assert shown.status_code == 303 and shown.headers["location"].endswith(f"/calls/{call_id}")
    # A POST to it (a mail scanner, a crafted form) decides nothing.
    posted = app.client.post(open_link, follow_redirects=False)

    assert posted.status_code == 400, posted.text
    status = app.status(call_id)
    assert status.approved is None and status.responded_by is None
    assert "approved" not in [e.action for e in app.audit(call_id)]


def test_a_used_email_link_never_decides_again(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"bob-{uuid.uuid4().hex[:6]}@example.com"
    app.run(app.service.accounts.create_person, address.split("@")[0], emails=[address])
    call_id = f"email-once-{uuid.uuid4().hex[:6]}"
    app.create(call_id, fn="wire_money", channel={"email": {"address": address}})
    approve_link = _link(_request_email(app, address, call_id), "Approve")

    # The first use is recorded, then the server fails before the approval is stored (a crash,
    # a lost database connection): the link is spent and the request still pending.
    original = app.service.respond_function_call
    failures: list[str] = []

    async def fail_once(*args: Any, **kwargs: Any) -> FunctionCall:
        if not failures:
            failures.append("failed")
            raise ConnectionError("the database connection was lost")
        result: FunctionCall = await original(*args, **kwargs)
        return result

    monkeypatch.setattr(app.service, "respond_function_call", fail_once)
    assert app.client.post(approve_link).status_code == 500
    assert app.status(call_id).approved is None

    # The same link again (replayed from the mailbox, a forward, a proxy log): refused.
    again = app.client.post(approve_link)

    assert again.status_code == 409, again.text
    assert "already been used" in again.text
    assert app.status(call_id).approved is None
    assert [e.action for e in app.audit(call_id)].count("link_used") == 1
    # The request is still open for a person to decide in the inbox.
    person_decides(
        app, call_id, approved=False, comment="use the other account", responder=f"email:{address}"
    )
    assert app.status(call_id).approved is False


# -- one rule for a picked option --------------------------------------------------------------


def test_the_inbox_and_slack_store_the_same_answer_for_the_same_option(app: App) -> None:
    """Picking an option without writing anything stores one text, whichever channel."""
    options = [
        {"name": "eu", "title": "Europe", "description": "Deploy to eu-west-1 only"},
        {"name": "hold", "title": "Hold"},
    ]
    reject_options = [
        {"name": "risky", "title": "Too risky", "description": "Too risky to run unattended"}
    ]
    tag = uuid.uuid4().hex[:6]
    app.run(app.service.accounts.create_person, "opal", password="opal-password-123")
    stored: dict[str, tuple[str | None, str | None]] = {}
    for via in ("slack", "web"):
        call_id = f"option-{via}-{tag}"
        channel = {"slack": {"channel_or_user_id": "C-OPS"}} if via == "slack" else None
        response = app.client.post(
            "/functionlayer/v1/contact_requests",
            json={
                "run_id": "channels",
                "call_id": call_id,
                "spec": {"msg": "Where to?", "response_options": options, "channel": channel},
            },
            headers={"Authorization": f"Bearer {app.token}"},
        )
        assert response.status_code == 200, response.text
        app.create(
            call_id + "-fn",
            fn="deploy",
            reject_options=reject_options,
            channel=channel,
        )
        if via == "slack":
            _click(app, block_actions(_posted(app, call_id), "U0BOSS", "fl_respond_option:0"))
            _click(app, block_actions(_posted(app, call_id + "-fn"), "U0BOSS", "fl_reject_option"))
        else:
            log_in(app.client, "opal", "opal-password-123")
            path = f"/inbox/contacts/{call_id}"
            answered = app.client.post(
                path,
                data={
                    "response": "",
                    "response_option_name": "eu",
                    "csrf_token": csrf_of(app.client.get(path).text),
                },
                follow_redirects=False,
            )
            assert answered.status_code == 303, answered.text
            path = f"/inbox/calls/{call_id}-fn"
            rejected = app.client.post(
                path,
                data={
                    "action": "reject",
                    "feedback": "",
                    "reject_option_name": "risky",
                    "csrf_token": csrf_of(app.client.get(path).text),
                },
                follow_redirects=False,
            )
            assert rejected.status_code == 303, rejected.text
        contact = app.run(app.service.get_human_contact, call_id)
        assert contact.status is not None and contact.status.response_option_name == "eu"
        call = app.status(call_id + "-fn")
        assert call.approved is False and call.reject_option_name == "risky"
        stored[via] = (contact.status.response, call.comment)
    assert stored["web"] == stored["slack"], stored
    assert stored["web"] == ("Deploy to eu-west-1 only", "Too risky to run unattended")
