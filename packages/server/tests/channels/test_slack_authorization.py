"""Slack decides only for the people a delivery allows, however the answer arrives: a button
click and a modal submission (reject with feedback, reply) are both checked against the
target's ``allowed_responder_ids`` (an empty list allows nobody), and Approve never works on a
message that could not show every argument. In process (TestClient) with the Slack Web API
double; interactions are signed the way Slack signs them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from functionlayer.models import FunctionCallStatus, HumanContactStatus

from packages.server.tests.channels._app import SlackApp, in_process, slack_settings
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    block_actions,
    view_submission,
)

pytestmark = pytest.mark.timeout(60)


class App(SlackApp):
    def create(self, path: str, call_id: str, spec: dict[str, Any]) -> None:
        response = self.client.post(
            f"/functionlayer/v1/{path}",
            json={"run_id": "slack-auth", "call_id": call_id, "spec": spec},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text

    def call_status(self, call_id: str) -> FunctionCallStatus:
        status = self.run(self.service.get_function_call, call_id).status
        assert status is not None
        return status

    def contact_status(self, call_id: str) -> HumanContactStatus:
        status = self.run(self.service.get_human_contact, call_id).status
        assert status is not None
        return status

    def send(self, payload: dict[str, Any], **headers: str) -> Any:
        """The server's answer to a signed interaction (None when empty); it must be 200."""
        response = super().send(payload, **headers)
        assert response.status_code == 200, response.text
        return response.json() if response.content else None

    def modal(self, message: SlackCall, user: str, action: str) -> dict[str, Any]:
        """The modal the server opens for ``user`` clicking ``action`` on ``message``."""
        before = len(self.slack.calls_to("views.open"))
        self.send(block_actions(message, user, action))
        return self.slack.wait_for("views.open", before + 1)[-1].view()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, module_slack_double: SlackDouble
) -> Iterator[App]:
    settings = slack_settings(tmp_path_factory.mktemp("slack-auth"), module_slack_double)
    with in_process(settings) as (client, service):
        box = App(client, service, {}, module_slack_double)
        box.headers = {"Authorization": f"Bearer {box.run(service.create_token, 'agent')}"}
        # Both are persons of the project: anywhere else, either may decide.
        box.run(service.accounts.create_person, "boss", slack_ids=["U0BOSS"])
        box.run(service.accounts.create_person, "intern", slack_ids=["U0INTERN"])
        yield box


def _slack(allowed: list[str] | None) -> dict[str, Any]:
    target: dict[str, Any] = {"channel_or_user_id": "C-OPS"}
    if allowed is not None:
        target["allowed_responder_ids"] = allowed
    return {"slack": target}


BOTH = {"responders": ["boss", "intern"]}
"""Request-wide, both may decide: only the target's own allow-list keeps intern out."""


def _new(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_a_click_from_outside_the_targets_allowed_responders_decides_nothing(app: App) -> None:
    call_id = _new("slack-allowed")
    # The request lets boss and intern decide; this message, only boss.
    app.create(
        "function_calls",
        call_id,
        {"fn": "launch", "kwargs": {}, "channel": _slack(["U0BOSS"]), "policy": BOTH},
    )
    message = app.posted(call_id)

    app.send(block_actions(message, "U0INTERN", "fl_approve"))

    assert app.call_status(call_id).approved is None
    app.send(block_actions(message, "U0BOSS", "fl_approve"))
    decided = app.call_status(call_id)
    assert decided.approved is True and decided.responded_by == "boss"


def test_an_empty_allowed_responders_list_lets_nobody_click(app: App) -> None:
    call_id = _new("slack-nobody")
    app.create("function_calls", call_id, {"fn": "launch", "kwargs": {}, "channel": _slack([])})
    message = app.posted(call_id)

    for user in ("U0BOSS", "U0INTERN"):
        app.send(block_actions(message, user, "fl_approve"))
        assert app.call_status(call_id).approved is None, user


def test_approve_never_works_on_a_message_that_cannot_show_every_argument(app: App) -> None:
    call_id = _new("slack-long")
    # Far more than a Slack section holds: the message shows a part and offers no Approve.
    kwargs = {"script": "rm -rf /srv/data; " * 400}
    app.create(
        "function_calls", call_id, {"fn": "run_script", "kwargs": kwargs, "channel": _slack(None)}
    )
    message = app.posted(call_id)
    assert '"fl_approve"' not in message.blocks_json()
    notes = len(app.slack.calls_to("chat.postEphemeral"))
    # A click on an Approve button anyway (an older message, a crafted client).
    click = block_actions(message, "U0BOSS", "fl_reject")
    value = json.dumps({"kind": "function_call", "call_id": call_id})
    click["actions"] = [{"action_id": "fl_approve", "value": value, "type": "button"}]

    app.send(click)

    assert app.call_status(call_id).approved is None
    note = app.slack.wait_for("chat.postEphemeral", notes + 1)[-1]
    assert note.params["user"] == "U0BOSS" and "every argument" in note.params["text"]


def test_a_reject_modal_submitted_by_someone_not_allowed_decides_nothing(app: App) -> None:
    call_id = _new("slack-modal")
    app.create(
        "function_calls",
        call_id,
        {"fn": "launch", "kwargs": {}, "channel": _slack(["U0BOSS"]), "policy": BOTH},
    )
    message = app.posted(call_id)
    view = app.modal(message, "U0BOSS", "fl_reject")

    refused = app.send(view_submission(view, "U0INTERN", "no, never"))

    assert refused is not None and refused["response_action"] == "errors", refused
    assert app.call_status(call_id).approved is None
    # A modal that names a message which is not a delivery of this request: refused too.
    metadata = json.loads(view["private_metadata"])
    elsewhere = {**view, "private_metadata": json.dumps({**metadata, "ts": "1.000"})}
    answer = app.send(view_submission(elsewhere, "U0BOSS", "no"))
    assert answer is not None and answer["response_action"] == "errors", answer
    assert app.call_status(call_id).approved is None
    assert app.send(view_submission(view, "U0BOSS", "not today")) is None
    decided = app.call_status(call_id)
    assert decided.approved is False and decided.responded_by == "boss"


def test_a_reply_modal_submitted_by_someone_not_allowed_answers_nothing(app: App) -> None:
    call_id = _new("slack-reply")
    app.create(
        "contact_requests",
        call_id,
        {"msg": "Which region?", "channel": _slack(["U0BOSS"]), "policy": BOTH},
    )
    message = app.posted(call_id)
    view = app.modal(message, "U0BOSS", "fl_reply")

    refused = app.send(view_submission(view, "U0INTERN", "us-east-1"))

    assert refused is not None and refused["response_action"] == "errors", refused
    assert app.contact_status(call_id).response is None
    assert app.send(view_submission(view, "U0BOSS", "eu-west-1")) is None
    answered = app.contact_status(call_id)
    assert answered.response == "eu-west-1" and answered.responded_by == "boss"
