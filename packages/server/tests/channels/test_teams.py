"""Microsoft Teams end to end: the real server (subprocess, SQLite and PostgreSQL) posts Adaptive
Cards over real HTTP to a local double of the Bot Framework connector, with a bot token from
the double's token endpoint; answers are Bot Framework activities carrying real RS256 tokens
signed with a key pair generated for the test, whose public half the double's OpenID metadata
and JWKS publish. The agent is the real client, waiting on a guarded function."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from functionlayer import (
    ApprovalMethod,
    ContactChannel,
    FunctionLayer,
    ResponseOption,
    TeamsContactChannel,
)
from functionlayer_server._cli import create_user

from packages.server.tests.channels._running import Running
from packages.server.tests.channels.teams_double import (
    APP_ID,
    APP_PASSWORD,
    BOT_TOKEN,
    ConnectorCall,
    TeamsDouble,
    card_nodes,
    new_key,
)
from tests._support.servers import ServerFactory, ServerProcess, fresh_postgres_database

pytestmark = pytest.mark.timeout(90)

OPS = "19:ops@thread.tacv2"
SRE = "19:sre@thread.tacv2"
SECRET = "19:secret-board@thread.tacv2"  # a conversation the operator does not route to
ALICE = "6a1c0d3e-0000-4000-8000-00000000a11c"
BOB = "6a1c0d3e-0000-4000-8000-000000000b0b"
OLGA = "6a1c0d3e-0000-4000-8000-0000000001a0"  # a person of another project
STRANGER = "6a1c0d3e-0000-4000-8000-0000000057a9"  # linked to nobody
MESSAGES = "/channels/teams/messages"


@dataclass
class World:
    server: ServerProcess
    double: TeamsDouble

    def agent(self) -> FunctionLayer:
        return FunctionLayer(
            approval_method=ApprovalMethod.CLOUD,
            run_id="teams-agent",
            api_base=self.server.api_base,
            api_token=self.server.token,
        )

    def create(self, call_id: str, channel: dict[str, Any] | None = None, **spec: Any) -> Any:
        spec.setdefault("fn", "deploy")
        spec.setdefault("kwargs", {"service": "billing", "version": "v2"})
        channel = channel or {"teams": {"conversation_id": OPS, "context": "the ops team"}}
        with self.server.client() as client:
            return client.post(
                "/function_calls",
                json={
                    "run_id": "teams-agent",
                    "call_id": call_id,
                    "spec": {**spec, "channel": channel},
                },
            )

    def status(self, call_id: str) -> dict[str, Any]:
        with self.server.client() as client:
            return dict(client.get(f"/function_calls/{call_id}").json()["status"] or {})

    def audit(self, call_id: str) -> list[dict[str, Any]]:
        with self.server.client() as client:
            return list(client.get(f"/function_calls/{call_id}/audit").json()["items"])

    def refusals(self, call_id: str) -> list[dict[str, Any]]:
        return [e for e in self.audit(call_id) if e["action"] == "refused"]

    def post(
        self, activity: dict[str, Any], token: str | None = None, *, auth: str | None = None
    ) -> httpx.Response:
        headers = {
            "Authorization": auth if auth is not None else f"Bearer {token or self.double.sign()}"
        }
        return httpx.post(
            self.server.base_url + MESSAGES, json=activity, headers=headers, timeout=30
        )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest,
    module_server_factory: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    double = TeamsDouble().start()
    with contextlib.ExitStack() as stack:
        stack.callback(double.stop)
        database_url = None
        if request.param == "postgres":
            database_url = stack.enter_context(fresh_postgres_database())
        policy = tmp_path_factory.mktemp("teams-policy") / "policy.toml"
        policy.write_text(
            f'[default]\nteams_conversations = ["{OPS}", "{SRE}"]\n'
            '[projects.other]\nteams_conversations = ["19:other@thread.tacv2"]\n'
        )
        env = {
            "FUNCTIONLAYER_SERVER_POLICY_FILE": str(policy),
            "FUNCTIONLAYER_SERVER_TEAMS_APP_ID": APP_ID,
            "FUNCTIONLAYER_SERVER_TEAMS_APP_PASSWORD": APP_PASSWORD,
            "FUNCTIONLAYER_SERVER_TEAMS_TOKEN_URL": double.token_url,
            "FUNCTIONLAYER_SERVER_TEAMS_SERVICE_URL": double.service_url,
            "FUNCTIONLAYER_SERVER_TEAMS_OPENID_URL": double.openid_url,
            "FUNCTIONLAYER_SERVER_SCHEDULER_INTERVAL_SECONDS": "0.05",
            "FUNCTIONLAYER_SERVER_PUBLIC_URL": "https://approvals.example",
        }
        server = module_server_factory(database_url, env=env, start=False)
        for name, teams_id, projects in (
            ("alice", ALICE, ["default"]),
            ("bob", BOB, ["default"]),
            ("olga", OLGA, ["other"]),
        ):
            asyncio.run(
                create_user(server.settings, name, None, teams_ids=[teams_id], projects=projects)
            )
        server.start()
        yield World(server, double)


# -- helpers ----------------------------------------------------------------------------------


def _mentions(call: ConnectorCall, call_id: str) -> bool:
    return any(
        n.get("type") == "Action.Submit"
        and n.get("data", {}).get("functionlayer", {}).get("call_id") == call_id
        for n in card_nodes(call.card)
    ) or any(call_id in str(n.get("text", "")) for n in card_nodes(call.card))


def posted(double: TeamsDouble, call_id: str, count: int = 1) -> list[ConnectorCall]:
    return double.wait_for("POST", count, where=lambda c: _mentions(c, call_id))


def _update_path(card: ConnectorCall) -> str:
    return f"/v3/conversations/{card.conversation}/activities/{card.response['id']}"


def updates(double: TeamsDouble, card: ConnectorCall) -> list[ConnectorCall]:
    """The recorded updates (PUT) of ``card``."""
    path = _update_path(card)
    return double.find("PUT", lambda c: c.path == path)


def updated(double: TeamsDouble, card: ConnectorCall) -> ConnectorCall:
    """The first update of ``card`` (waits for it)."""
    path = _update_path(card)
    return double.wait_for("PUT", where=lambda c: c.path == path)[0]


def text_of(card: dict[str, Any]) -> str:
    """What a person reads on the card (every text, title and label)."""
    texts = [
        str(n[k])
        for n in card_nodes(card)
        for k in ("text", "title", "label")
        if isinstance(n.get(k), str)
    ]
    return "\n".join(texts)


def actions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n["title"]: n
        for n in card_nodes(card)
        if n.get("type") in ("Action.Submit", "Action.ShowCard", "Action.OpenUrl")
    }


def activity(
    card: ConnectorCall,
    title: str,
    user: str | None,
    *,
    text: str | None = None,
    service_url: str | None = None,
    double: TeamsDouble | None = None,
) -> dict[str, Any]:
    """The ``message`` activity Teams sends when ``user`` submits the card's action ``title``
    (the reject and reply forms' submit button is inside their ShowCard)."""
    found = actions(card.card)[title]
    if found["type"] == "Action.ShowCard":
        found = found["card"]["actions"][0]
    value = dict(found["data"])
    if text is not None:
        value["fl_text"] = text
    sender: dict[str, Any] = {"id": f"29:{uuid.uuid4().hex}", "name": "Someone"}
    if user is not None:
        sender["aadObjectId"] = user
    assert double is not None
    return {
        "type": "message",
        "id": f"1{uuid.uuid4().int % 10**15}",
        "timestamp": "2026-12-04T18:00:00.000Z",
        "channelId": "msteams",
        "serviceUrl": service_url or double.service_url,
        "from": sender,
        "conversation": {
            "isGroup": True,
            "conversationType": "channel",
            "id": f"{card.conversation};messageid={card.response['id']}",
        },
        "recipient": {"id": f"28:{APP_ID}", "name": "FunctionLayer"},
        "replyToId": card.response["id"],
        "value": value,
    }


def _call_id(prefix: str) -> str:
    return f"teams-{prefix}-{uuid.uuid4().hex[:8]}"


# -- delivery -----------------------------------------------------------------------------------


def test_the_card_shows_the_call_and_its_decisions(world: World) -> None:
    call_id = _call_id("card")
    hostile = "<at>Everyone</at> **bold** [click](http://evil.example) \u202egnp.exe"
    created = world.create(
        call_id,
        description="Deploy *now* <at>General</at>",
        kwargs={"service": "billing", "note": hostile},
        reject_options=[
            {"name": "freeze", "title": "Change freeze", "prompt_fill": "We are frozen"}
        ],
    )
    assert created.status_code == 200, created.text
    (card,) = posted(world.double, call_id)
    assert card.path == f"/v3/conversations/{OPS}/activities"
    assert card.authorization == f"Bearer {BOT_TOKEN}"
    # The bot token came from client credentials at the configured token endpoint.
    form = world.double.token_requests[-1]
    assert form["grant_type"] == "client_credentials" and form["client_id"] == APP_ID
    assert form["scope"] == "https://api.botframework.com/.default"
    body = card.card
    assert (
        body["type"] == "AdaptiveCard" and "msteams" in body and "entities" not in body["msteams"]
    )
    shown = text_of(body)
    assert "Approve deploy?" in shown and "the ops team" in shown and call_id in shown
    assert "service: billing" in shown
    assert "⟨U+202E⟩" in shown and "\u202e" not in shown  # hidden characters marked
    assert "Change freeze: We are frozen" in shown  # the option and what the agent gets
    # Agent text is only ever in TextRuns (no markdown) or action titles, never in a TextBlock.
    for node in card_nodes(body):
        if node.get("type") == "TextBlock":
            assert "evil.example" not in node["text"] and "<at>" not in node["text"]
    found = actions(body)
    assert set(found) >= {"Approve", "Reject…", "Change freeze", "Open in inbox"}
    assert found["Approve"]["data"] == {
        "functionlayer": {"action": "approve", "kind": "function_call", "call_id": call_id}
    }
    form_input = found["Reject…"]["card"]["body"][0]
    assert form_input["type"] == "Input.Text" and form_input["id"] == "fl_text"
    assert form_input["isRequired"] is True
    delivered = [e for e in world.audit(call_id) if e["action"] == "delivered"]
    assert [e["via"] for e in delivered] == ["teams"]


def test_arguments_too_long_for_the_card_offer_no_approve(world: World) -> None:
    call_id = _call_id("long")
    note = "".join(f"line {i}: pay ACME the agreed amount\n" for i in range(400)) + "THE-END"
    assert world.create(call_id, kwargs={"note": note}).status_code == 200
    (card,) = posted(world.double, call_id)
    found = actions(card.card)
    assert "Approve" not in found and "Reject…" in found
    assert "too long to show here in full" in text_of(card.card)
    assert "THE-END" not in text_of(card.card)
    # An approval forged from another card's button is refused too.
    forged = activity(card, "Reject…", ALICE, text="x", double=world.double)
    forged["value"]["functionlayer"]["action"] = "approve"
    answer = world.post(forged)
    assert answer.status_code == 200 and answer.json()["ok"] is False
    assert world.status(call_id).get("approved") is None


# -- deciding -----------------------------------------------------------------------------------


def test_a_signed_approve_runs_the_body_once_and_updates_the_card(world: World) -> None:
    ran: list[str] = []

    @world.agent().require_approval(
        ContactChannel(teams=TeamsContactChannel(conversation_id=OPS, context="the ops team"))
    )
    def deploy(service: str, version: str) -> str:
        ran.append(f"{service} {version}")
        return f"deployed {service} {version}"

    call_id = _call_id("approve")
    call = Running(deploy, call_id, service="billing", version="v2")
    (card,) = posted(world.double, call_id)
    assert call.waiting
    click = activity(card, "Approve", ALICE, double=world.double)
    answer = world.post(click)
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
    assert call.get(timeout=30.0) == "deployed billing v2"
    assert ran == ["billing v2"]

    update = updated(world.double, card)
    assert update.authorization == f"Bearer {BOT_TOKEN}"
    assert "Approved by alice via teams" in text_of(update.card)
    assert "actions" not in update.card and not [
        n for n in card_nodes(update.card) if n.get("type") == "ActionSet"
    ]
    status = world.status(call_id)
    assert status["approved"] is True and status["responded_by"] == "alice"
    assert status["responded_via"] == "teams"
    approved = [e for e in world.audit(call_id) if e["action"] == "approved"]
    assert approved[0]["details"]["identity"] == f"teams:{ALICE}"

    # The same activity again (a replay) and a new click on the decided card: refused, audited.
    replay = world.post(click)
    assert replay.status_code == 401 and "replayed" in replay.json()["detail"]
    again = world.post(activity(card, "Approve", BOB, double=world.double))
    assert again.status_code == 200 and "Already decided" in again.json()["detail"]
    reasons = [e["details"]["reason"] for e in world.refusals(call_id)]
    assert "replayed Teams activity" in reasons and "already decided" in reasons
    assert [e["action"] for e in world.audit(call_id)].count("approved") == 1
    assert ran == ["billing v2"]  # the body ran once


def test_reject_with_feedback_reaches_the_agent(world: World) -> None:
    ran: list[str] = []

    @world.agent().require_approval(
        ContactChannel(teams=TeamsContactChannel(conversation_id=OPS)),
        reject_options=[ResponseOption(name="freeze", title="Change freeze")],
    )
    def delete_table(name: str) -> str:
        ran.append(name)
        return f"deleted {name}"

    call_id = _call_id("reject")
    call = Running(delete_table, call_id, name="orders")
    (card,) = posted(world.double, call_id)
    empty = world.post(activity(card, "Reject…", ALICE, text="   ", double=world.double))
    assert empty.json()["ok"] is False and call.waiting
    done = world.post(
        activity(card, "Reject…", ALICE, text="use the staging copy instead", double=world.double)
    )
    assert done.json()["ok"] is True, done.text
    assert (
        call.get(timeout=30.0)
        == "User denied delete_table with feedback: use the staging copy instead"
    )
    assert ran == []
    update = updated(world.double, card)
    assert "Rejected by alice via teams: use the staging copy instead" in text_of(update.card)


def test_a_human_contact_is_answered_with_an_option(world: World) -> None:
    call_id = _call_id("contact")
    with world.server.client() as client:
        created = client.post(
            "/contact_requests",
            json={
                "run_id": "teams-agent",
                "call_id": call_id,
                "spec": {
                    "msg": "Which region?",
                    "channel": {"teams": {"conversation_id": SRE}},
                    "response_options": [{"name": "eu", "title": "Europe"}],
                },
            },
        )
    assert created.status_code == 200, created.text
    (card,) = posted(world.double, call_id)
    assert "Which region?" in text_of(card.card)
    answer = world.post(activity(card, "Europe", BOB, double=world.double))
    assert answer.json()["ok"] is True, answer.text
    with world.server.client() as client:
        status = client.get(f"/contact_requests/{call_id}").json()["status"]
    assert status["response"] == "Europe" and status["responded_by"] == "bob"
    update = updated(world.double, card)
    assert "Answered by bob via teams: Europe" in text_of(update.card)


# -- refused: not the Bot Framework -------------------------------------------------------------


def _pending(world: World, prefix: str) -> tuple[str, ConnectorCall]:
    call_id = _call_id(prefix)
    assert world.create(call_id).status_code == 200
    (card,) = posted(world.double, call_id)
    return call_id, card


def _refused_unauthenticated(world: World, call_id: str, answer: httpx.Response, why: str) -> None:
    assert answer.status_code == 401, answer.text
    assert why in answer.json()["detail"], answer.json()
    assert world.status(call_id).get("approved") is None
    refused = world.refusals(call_id)
    assert refused and refused[-1]["who"] == "unknown" and why in refused[-1]["details"]["reason"]


def test_a_forged_signature_is_refused(world: World) -> None:
    call_id, card = _pending(world, "forged")
    click = activity(card, "Approve", ALICE, double=world.double)
    forged = world.double.sign(key=new_key())  # the right kid, another key
    _refused_unauthenticated(
        world, call_id, world.post(click, forged), "Signature verification failed"
    )
    unsigned = world.post(activity(card, "Approve", ALICE, double=world.double), auth="")
    _refused_unauthenticated(world, call_id, unsigned, "no Bot Framework token")
    hs256 = world.post(
        activity(card, "Approve", ALICE, double=world.double),
        auth="Bearer " + jwt.encode({"aud": APP_ID}, APP_PASSWORD * 2, algorithm="HS256"),
    )
    _refused_unauthenticated(world, call_id, hs256, "RS256")
    assert not updates(world.double, card)


def test_an_unknown_key_is_refused_and_refetches_are_rate_limited(world: World) -> None:
    call_id, card = _pending(world, "kid")
    before = world.double.key_fetches
    for _ in range(3):
        token = world.double.sign(key=new_key(), kid=f"attacker-{uuid.uuid4().hex[:6]}")
        answer = world.post(activity(card, "Approve", ALICE, double=world.double), token)
        _refused_unauthenticated(world, call_id, answer, "unknown key")
    assert world.double.key_fetches - before <= 1


def test_a_wrong_audience_is_refused(world: World) -> None:
    call_id, card = _pending(world, "aud")
    token = world.double.sign(aud="another-bot-app-id")
    answer = world.post(activity(card, "Approve", ALICE, double=world.double), token)
    _refused_unauthenticated(world, call_id, answer, "Audience doesn't match")


def test_a_wrong_issuer_is_refused(world: World) -> None:
    call_id, card = _pending(world, "iss")
    token = world.double.sign(iss="https://sts.windows.net/attacker/")
    answer = world.post(activity(card, "Approve", ALICE, double=world.double), token)
    _refused_unauthenticated(world, call_id, answer, "Invalid issuer")


def test_an_expired_token_is_refused(world: World) -> None:
    call_id, card = _pending(world, "exp")
    now = int(time.time())
    token = world.double.sign(exp=now - 3600, nbf=now - 7200, iat=now - 7200)
    answer = world.post(activity(card, "Approve", ALICE, double=world.double), token)
    _refused_unauthenticated(world, call_id, answer, "Signature has expired")


def test_a_service_url_other_than_the_tokens_is_refused(world: World) -> None:
    call_id, card = _pending(world, "svc")
    click = activity(
        card, "Approve", ALICE, service_url="https://evil.example/teams/", double=world.double
    )
    answer = world.post(click, world.double.sign())
    _refused_unauthenticated(world, call_id, answer, "serviceUrl")
    # The server never talks to the URL an activity names: only to its configured connector.
    assert all(c.path.startswith("/v3/") for c in world.double.calls)


def test_a_key_not_endorsed_for_the_channel_is_refused(world: World) -> None:
    call_id, card = _pending(world, "endorse")
    click = activity(card, "Approve", ALICE, double=world.double)
    click["channelId"] = "webchat"  # the double's key is endorsed for msteams only
    _refused_unauthenticated(world, call_id, world.post(click), "not endorsed")


# -- refused: not a person who may decide -------------------------------------------------------


def test_an_unlinked_user_is_refused_and_audited(world: World) -> None:
    call_id, card = _pending(world, "unlinked")
    answer = world.post(activity(card, "Approve", STRANGER, double=world.double))
    assert answer.status_code == 200 and answer.json()["ok"] is False
    assert "not allowed" in answer.json()["detail"]
    assert world.status(call_id).get("approved") is None
    refused = world.refusals(call_id)
    assert refused[-1]["who"] == f"teams:{STRANGER}"
    assert "not linked to any person" in refused[-1]["details"]["reason"]
    nobody = world.post(activity(card, "Approve", None, double=world.double))
    assert nobody.json()["ok"] is False
    assert "no Teams user" in world.refusals(call_id)[-1]["details"]["reason"]
    assert not updates(world.double, card)
    # Then the linked person's approval counts.
    assert world.post(activity(card, "Approve", ALICE, double=world.double)).json()["ok"] is True
    assert world.status(call_id)["responded_by"] == "alice"


def test_a_person_outside_the_policy_is_refused(world: World) -> None:
    call_id = _call_id("policy")
    channel = {"teams": {"conversation_id": OPS}}
    assert world.create(call_id, channel, policy={"responders": ["alice"]}).status_code == 200
    (card,) = posted(world.double, call_id)
    for who, reason in ((BOB, "not among the persons allowed"), (OLGA, "not a member of project")):
        answer = world.post(activity(card, "Approve", who, double=world.double))
        assert answer.json()["ok"] is False, answer.text
        assert reason in world.refusals(call_id)[-1]["details"]["reason"]
    assert world.status(call_id).get("approved") is None
    # A target's own allow-list narrows it further (alice may decide the request, not here).
    limited = _call_id("allowlist")
    channel = {"teams": {"conversation_id": OPS, "allowed_responder_ids": [BOB]}}
    created = world.create(limited, channel, policy={"responders": ["alice", "bob"]})
    assert created.status_code == 200, created.text
    (card,) = posted(world.double, limited)
    assert world.post(activity(card, "Approve", ALICE, double=world.double)).json()["ok"] is False
    assert "through this message" in world.refusals(limited)[-1]["details"]["reason"]
    assert world.post(activity(card, "Approve", BOB, double=world.double)).json()["ok"] is True


def test_a_card_of_another_request_cannot_decide_this_one(world: World) -> None:
    call_id, _ = _pending(world, "target")
    _, other = _pending(world, "other")
    click = activity(other, "Approve", ALICE, double=world.double)
    click["value"]["functionlayer"]["call_id"] = call_id
    assert world.post(click).json()["ok"] is False
    assert world.status(call_id).get("approved") is None
    assert "not a delivery of this request" in world.refusals(call_id)[-1]["details"]["reason"]


def test_the_agent_cannot_route_to_a_conversation_the_policy_does_not_allow(
    world: World,
) -> None:
    call_id = _call_id("route")
    answer = world.create(call_id, {"teams": {"conversation_id": SECRET}})
    assert answer.status_code == 422, answer.text
    assert "not allowed by the operator's routing" in answer.text
    hidden = world.create(
        _call_id("route"),
        {"teams": {"conversation_id": OPS}},
        policy={"channels": [{"teams": {"conversation_id": SECRET}}]},
    )
    assert hidden.status_code == 422, hidden.text
    unknown = world.create(
        _call_id("route"), {"teams": {"conversation_id": OPS, "allowed_responder_ids": [STRANGER]}}
    )
    assert unknown.status_code == 422, unknown.text
    time.sleep(0.3)
    assert not world.double.find("POST", lambda c: c.conversation == SECRET)


# -- quorum, display, the directory --------------------------------------------------------------


def test_a_quorum_shows_progress_on_the_card_and_counts_persons(world: World) -> None:
    call_id = _call_id("quorum")
    assert world.create(call_id, policy={"approvals_required": 2}).status_code == 200
    (card,) = posted(world.double, call_id)
    assert "0 of 2 approvals so far." in text_of(card.card)
    first = world.post(activity(card, "Approve", ALICE, double=world.double))
    assert first.json()["ok"] is True and "1 of 2" in first.json()["detail"]
    progress = updated(world.double, card)
    assert "1 of 2 approvals so far." in text_of(progress.card)
    assert "Approve" in actions(progress.card)  # still open for the second person
    twice = world.post(activity(card, "Approve", ALICE, double=world.double))
    assert twice.json()["ok"] is False and "counts once" in twice.json()["detail"]
    assert world.status(call_id).get("approved") is None
    assert world.post(activity(card, "Approve", BOB, double=world.double)).json()["ok"] is True
    status = world.status(call_id)
    assert status["approved"] is True and status["approvals"] == ["alice", "bob"]
    final = world.double.wait_for("PUT", 2, where=lambda c: c.path == progress.path)[-1]
    assert "Approved by bob via teams (approvals: alice, bob)" in text_of(final.card)
    assert "actions" not in final.card


@pytest.mark.parametrize("code", [0x202E, 0x200B, 0xFE0F, 0xE0101, 0x034F, 0x180B, 0x3164, 0x2800])
def test_the_card_marks_every_invisible_character(code: int) -> None:
    from functionlayer import FunctionCall, FunctionCallSpec
    from functionlayer_server._channels._teams_cards import request_card

    hidden = chr(code)
    call = FunctionCall(
        run_id="r",
        call_id="c",
        spec=FunctionCallSpec(
            fn="wire", kwargs={"to": f"pay{hidden}pal"}, description=f"Wire{hidden} money"
        ),
    )
    shown = text_of(request_card(call, context=None, base_url="https://fl.example"))
    assert hidden not in shown
    assert shown.count(f"⟨U+{code:04X}⟩") == 2  # in the arguments and in the docstring


def test_users_link_teams_ids_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "functionlayer_server._cli", *args, "--database-url", url],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = cli("users", "create", "carol", "--no-login", "--create", "--teams-id", ALICE.upper())
    assert created.returncode == 0, created.stderr
    linked = cli("users", "link", "carol", "--teams-id", BOB)
    assert linked.returncode == 0, linked.stderr
    listed = cli("users", "list")
    assert f"teams:{ALICE}" in listed.stdout and f"teams:{BOB}" in listed.stdout
