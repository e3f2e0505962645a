"""Grants from Slack ("Approve and allow similar…"), against a hostile agent, on SQLite and
PostgreSQL: offered only where the operator's policy allows grants for the function, the modal
shows every preset's scope in full and takes only presets; a submission approves the call and
records the grant with ``via = "slack"``. An agent token never makes a grant through the Slack
route; a forged, stale or replayed submission makes none; a crafted submission for a function
whose policy forbids grants makes none and approves nothing."""

from __future__ import annotations

import html
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packages.server.tests.channels._app import SlackApp, in_process, slack_settings
from packages.server.tests.channels._grants import GRANT_RULES
from packages.server.tests.channels.conftest import SIGNING_SECRET
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    block_actions,
    interaction_body,
    slack_headers,
)
from tests._support.inprocess import STORES, database_url

pytestmark = pytest.mark.timeout(90)

POLICY = '[default]\nslack_channels = ["C-OPS"]\n' + GRANT_RULES


class App(SlackApp):
    def create(
        self, fn: str, kwargs: dict[str, Any], *, posted: bool = True
    ) -> tuple[str, SlackCall | None]:
        call_id = f"{fn}-{uuid.uuid4().hex[:8]}"
        spec = {"fn": fn, "kwargs": kwargs, "channel": {"slack": {"channel_or_user_id": "C-OPS"}}}
        response = self.client.post(
            "/functionlayer/v1/function_calls",
            json={"run_id": "slack-grants", "call_id": call_id, "spec": spec},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        if not posted:
            return call_id, None
        return call_id, self.posted(call_id)

    def create_posted(self, fn: str, kwargs: dict[str, Any]) -> tuple[str, SlackCall]:
        call_id, message = self.create(fn, kwargs)
        assert message is not None
        return call_id, message

    def grants(self) -> list[Any]:
        return list(self.run(self.service.store.list_grants, project="default"))

    def approved(self, call_id: str) -> bool | None:
        status = self.run(self.service.get_function_call, call_id).status
        return None if status is None else status.approved

    def open_modal(self, message: SlackCall, user: str = "U0BOSS") -> tuple[dict[str, Any], str]:
        before = len(self.slack.calls_to("views.open"))
        assert self.send(block_actions(message, user, "fl_grant")).status_code == 200
        opened = self.slack.wait_for("views.open", before + 1)[-1]
        return opened.view(), str(opened.response["view"]["id"])


@pytest.fixture(scope="module", params=STORES)
def app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_slack_double: SlackDouble,
) -> Iterator[App]:
    directory: Path = tmp_path_factory.mktemp("slack-grants")
    with database_url(request, directory) as url:
        settings = slack_settings(directory, module_slack_double, policy=POLICY, database_url=url)
        with in_process(settings) as (client, service):
            box = App(client, service, {}, module_slack_double)
            box.headers = {"Authorization": f"Bearer {box.run(service.create_token, 'agent')}"}
            box.run(service.accounts.create_person, "boss", slack_ids=["U0BOSS"])
            yield box


def refused(response: Any) -> dict[str, Any]:
    """The modal's error answer (an empty 200 means the submission was accepted)."""
    assert response.status_code == 200 and response.content, "the submission was accepted"
    answer: dict[str, Any] = response.json()
    assert answer["response_action"] == "errors", answer
    return answer


def submission(
    view: dict[str, Any], view_id: str, user: str = "U0BOSS", **picks: str
) -> dict[str, Any]:
    """Submitting the grant modal with ``picks`` (default: each select's first option)."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        name = block["block_id"].removeprefix("fl_grant_")
        value = picks.get(name, block["element"]["initial_option"]["value"])
        values[block["block_id"]] = {"choice": {"selected_option": {"value": value}}}
    return {
        "type": "view_submission",
        "user": {"id": user},
        "view": {
            "id": view_id,
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": values},
        },
    }


def test_the_grant_is_offered_shown_in_full_and_made_with_via_slack(app: App) -> None:
    call_id, message = app.create_posted("pay", {"to": "acme", "amount": 120})
    assert '"fl_grant"' in message.blocks_json()
    view, view_id = app.open_modal(message)
    text = html.unescape(
        "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")
    )
    # Every preset's scope, in full, before anything is made.
    assert 'to == "acme"\namount == 120' in text and 'to == "acme"\namount <= 120' in text
    assert app.approved(call_id) is None  # opening the modal decides nothing

    answer = app.send(submission(view, view_id, scope="upto:amount", lifetime="1d", uses="5"))
    assert answer.status_code == 200 and not answer.content, answer.text
    assert app.approved(call_id) is True
    (grant,) = [g for g in app.grants() if g.source_call_id == call_id]
    assert grant.person == "boss" and grant.max_uses == 5
    assert json.loads(grant.scope) == ['to == "acme"', "amount <= 120"]
    trail = app.run(app.service.audit_trail, call_id)
    granted = [e for e in trail if e.action == "granted"]
    assert len(granted) == 1 and granted[0].via == "slack" and granted[0].who == "boss"
    # The grant works: a smaller payment to acme from the same agent is approved at once.
    later, _ = app.create("pay", {"to": "acme", "amount": 80}, posted=False)
    assert app.approved(later) is True


@pytest.mark.parametrize("fn", ["nogrant", "twice", "wipe"])
def test_no_grant_is_offered_or_made_where_the_policy_forbids_it(app: App, fn: str) -> None:
    call_id, message = app.create_posted(fn, {"to": "acme", "amount": 120})
    assert '"fl_grant"' not in message.blocks_json()
    # A crafted click on a grant button: no modal.
    before = len(app.slack.calls_to("views.open"))
    click = block_actions(message, "U0BOSS", "fl_reject")
    click["actions"] = [
        {
            "action_id": "fl_grant",
            "value": json.dumps({"kind": "function_call", "call_id": call_id}),
        }
    ]
    assert app.send(click).status_code == 200
    time.sleep(0.3)
    assert len(app.slack.calls_to("views.open")) == before
    # A crafted submission (a modal the server never opened for this call): refused.
    metadata = {
        "kind": "function_call",
        "call_id": call_id,
        "channel": message.response["channel"],
        "ts": message.response["ts"],
    }
    forged_view = {
        "callback_id": "fl_grant_view",
        "private_metadata": json.dumps(metadata),
        "blocks": [
            {
                "type": "input",
                "block_id": f"fl_grant_{name}",
                "element": {"initial_option": {"value": v}},
            }
            for name, v in (
                ("scope", "exact"),
                ("agents", "project"),
                ("lifetime", "1h"),
                ("uses", "1"),
            )
        ],
    }
    refused(app.send(submission(forged_view, "V-FORGED-" + fn)))
    assert app.approved(call_id) is None
    assert not [g for g in app.grants() if g.source_call_id == call_id]


def test_an_agent_token_never_makes_a_grant_through_the_slack_route(app: App) -> None:
    call_id, message = app.create_posted("pay", {"to": "agent-test", "amount": 7})
    view, view_id = app.open_modal(message)
    body = interaction_body(submission(view, view_id))
    # The agent's own token instead of Slack's signature, and a signature by another secret.
    for headers in (
        {**app.headers, "Content-Type": "application/x-www-form-urlencoded"},
        slack_headers(body, "not-the-signing-secret"),
        slack_headers(body, SIGNING_SECRET, timestamp=int(time.time()) - 3600),  # stale
    ):
        response = app.client.post("/slack/interactions", content=body, headers=headers)
        assert response.status_code == 401, response.text
    assert app.approved(call_id) is None
    assert not [g for g in app.grants() if g.source_call_id == call_id]
    # The agent's own grant API is closed to it too.
    api = app.client.post(
        f"/functionlayer/v1/function_calls/{call_id}/grants",
        json={"agents": "project", "lifetime_seconds": 60, "max_uses": 1},
        headers=app.headers,
    )
    assert api.status_code in (401, 403), api.text
    assert not [g for g in app.grants() if g.source_call_id == call_id]


def test_a_replayed_submission_makes_no_second_grant(app: App) -> None:
    call_id, message = app.create_posted("pay", {"to": "replay", "amount": 3})
    view, view_id = app.open_modal(message)
    payload = submission(view, view_id, agents="project")
    assert app.send(payload).status_code == 200
    assert len([g for g in app.grants() if g.source_call_id == call_id]) == 1
    # The same signed body again (within Slack's five minutes), then re-signed: nothing more.
    refused(app.send(payload))
    assert len([g for g in app.grants() if g.source_call_id == call_id]) == 1


def test_only_presets_are_accepted_and_someone_not_allowed_makes_nothing(app: App) -> None:
    call_id, message = app.create_posted("pay", {"to": "presets", "amount": 9})
    view, view_id = app.open_modal(message)
    refused(app.send(submission(view, view_id, lifetime="3650d")))
    view, view_id = app.open_modal(message)
    refused(app.send(submission(view, view_id, user="U0STRANGER")))
    assert app.approved(call_id) is None
    assert not [g for g in app.grants() if g.source_call_id == call_id]
