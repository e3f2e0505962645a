"""Grants from Discord ("Approve and allow similar…"), against a hostile agent, on SQLite and
PostgreSQL: offered only where the operator's policy allows grants for the function; the form
(an ephemeral message) shows every preset scope in full and takes only presets; "Approve and
grant" approves the call and records the grant with ``via = "discord"``. An agent token, a
forged, stale or replayed interaction, a crafted ``custom_id`` or someone not allowed to decide
makes no grant and approves nothing."""

from __future__ import annotations

import json
import time
import tomllib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer_server._policy import OperatorPolicy
from functionlayer_server._service import ApprovalService
from nacl.signing import SigningKey

from packages.server.tests.channels._grants import GRANT_RULES
from packages.server.tests.channels.discord_app import component_interaction, discord_app
from packages.server.tests.channels.discord_double import DiscordCall, DiscordDouble
from tests._support.inprocess import STORES, database_url

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

ALICE, STRANGER = "111111111111111111", "999999999999999999"
INTERACTIONS = "/channels/discord/interactions"
GRANT_LABEL = "Approve and allow similar…"

POLICY = '[default]\ndiscord_channels = ["C-OPS"]\n' + GRANT_RULES


class Box:
    def __init__(
        self, service: ApprovalService, http: httpx.AsyncClient, key: SigningKey, double: Any
    ) -> None:
        self.service = service
        self.http = http
        self.key = key
        self.double: DiscordDouble = double
        self.agent: dict[str, str] = {}

    async def post(
        self, payload: dict[str, Any], *, key: SigningKey | None = None, ts: str | None = None
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        stamp = ts or str(int(time.time()))
        signature = (key or self.key).sign(stamp.encode() + body).signature.hex()
        headers = {
            "Content-Type": "application/json",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": stamp,
        }
        return await self.http.post(INTERACTIONS, content=body, headers=headers)

    async def answer(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(payload)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def create(self, fn: str, kwargs: dict[str, Any]) -> tuple[str, DiscordCall]:
        call_id = f"{fn}-{uuid.uuid4().hex[:8]}"
        spec = {"fn": fn, "kwargs": kwargs, "channel": {"discord": {"channel_id": "C-OPS"}}}
        response = await self.http.post(
            "/functionlayer/v1/function_calls",
            json={"run_id": "discord-grants", "call_id": call_id, "spec": spec},
            headers=self.agent,
        )
        assert response.status_code == 200, response.text
        message = await self.double.await_for(
            "POST",
            where=lambda c: c.path.endswith("/messages") and call_id in json.dumps(c.body),
        )
        return call_id, message[0]

    async def grants(self, call_id: str) -> list[Any]:
        found = await self.service.store.list_grants(project="default")
        return [g for g in found if g.source_call_id == call_id]

    async def approved(self, call_id: str) -> bool | None:
        status = (await self.service.get_function_call(call_id)).status
        return None if status is None else status.approved


@pytest.fixture(params=STORES)
async def box(
    request: pytest.FixtureRequest, tmp_path: Path, discord_double: DiscordDouble
) -> AsyncIterator[Box]:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    with database_url(request, tmp_path) as url:
        async with discord_app(url, discord_double, policy, {"alice": ALICE}) as (
            service,
            http,
            key,
        ):
            b = Box(service, http, key, discord_double)
            b.agent = {"Authorization": f"Bearer {await service.create_token('agent')}"}
            yield b


def labels(components: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c.get("label", ""): c for row in components for c in row["components"]}


def interaction(
    custom_id: str, user: str, *, message_id: str, values: list[str] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2 if values is None else 3}
    if values is not None:
        data["values"] = values
    return component_interaction(message_id, user, data)


def click_grant(message: DiscordCall, user: str = ALICE) -> dict[str, Any]:
    button = labels(message.body["components"])[GRANT_LABEL]
    return interaction(button["custom_id"], user, message_id=message.response["id"])


def select(form: dict[str, Any], row: int, value: str, user: str = ALICE) -> dict[str, Any]:
    menu = form["components"][row]["components"][0]
    return interaction(menu["custom_id"], user, message_id="ephemeral-1", values=[value])


def make(form: dict[str, Any], user: str = ALICE) -> dict[str, Any]:
    button = form["components"][4]["components"][0]
    assert button["label"] == "Approve and grant"
    return interaction(button["custom_id"], user, message_id="ephemeral-1")


def refused(answer: dict[str, Any]) -> str:
    """The text of an ephemeral refusal (no form, no update)."""
    assert answer["type"] == 4 and answer["data"]["flags"] == 64, answer
    assert "components" not in answer["data"], answer
    text: str = answer["data"]["content"]
    return text


async def open_form(box: Box, message: DiscordCall, user: str = ALICE) -> dict[str, Any]:
    answer = await box.answer(click_grant(message, user))
    assert answer["type"] == 4 and answer["data"]["flags"] == 64, answer
    form: dict[str, Any] = answer["data"]
    return form


async def test_the_grant_is_offered_shown_in_full_and_made_with_via_discord(box: Box) -> None:
    call_id, message = await box.create("pay", {"to": "acme", "amount": 120})
    assert GRANT_LABEL in labels(message.body["components"])
    form = await open_form(box, message)
    scopes = "\n".join(e["title"] + "\n" + e["description"] for e in form["embeds"])
    # Every preset's scope, in full, before anything is made.
    assert 'to == "acme"\namount == 120' in scopes and 'to == "acme"\namount <= 120' in scopes
    assert form["allowed_mentions"] == {"parse": []}
    assert await box.approved(call_id) is None  # opening the form decides nothing

    for row, value in ((0, "1"), (2, "1d"), (3, "5")):
        answer = await box.answer(select(form, row, value))
        assert answer["type"] == 7, answer
        form = answer["data"]
    assert await box.approved(call_id) is None  # picking decides nothing
    done = await box.answer(make(form))
    assert done["type"] == 7 and "granted" in done["data"]["content"], done
    assert done["data"]["components"] == []
    assert await box.approved(call_id) is True
    (grant,) = await box.grants(call_id)
    assert grant.person == "alice" and grant.max_uses == 5
    assert json.loads(grant.scope) == ['to == "acme"', "amount <= 120"]
    trail = await box.service.audit_trail(call_id)
    granted = [e for e in trail if e.action == "granted"]
    assert len(granted) == 1 and granted[0].via == "discord" and granted[0].who == "alice"
    # The grant works: a smaller payment to acme from the same agent is approved at once.
    later = f"pay-{uuid.uuid4().hex[:8]}"
    spec = {"fn": "pay", "kwargs": {"to": "acme", "amount": 80}}
    response = await box.http.post(
        "/functionlayer/v1/function_calls",
        json={"run_id": "discord-grants", "call_id": later, "spec": spec},
        headers=box.agent,
    )
    assert response.status_code == 200, response.text
    assert await box.approved(later) is True
    # The same form again (a second click on "Approve and grant"): nothing more.
    refused(await box.answer(make(form)))
    assert len(await box.grants(call_id)) == 1


@pytest.mark.parametrize("fn", ["nogrant", "twice", "wipe"])
async def test_no_grant_is_offered_or_made_where_the_policy_forbids_it(box: Box, fn: str) -> None:
    call_id, message = await box.create(fn, {"to": "acme", "amount": 120})
    assert GRANT_LABEL not in labels(message.body["components"])
    # A crafted click on a grant button: refused, no form.
    crafted = interaction(f"fl:ag:f:{call_id}", ALICE, message_id=message.response["id"])
    refused(await box.answer(crafted))
    # A crafted "Approve and grant" (a form the server never opened for this call): refused.
    forged = interaction(f"fg:g0.project.1h.1:f:{call_id}", ALICE, message_id="ephemeral-1")
    refused(await box.answer(forged))
    assert await box.approved(call_id) is None
    assert not await box.grants(call_id)


async def test_the_policy_is_checked_again_when_the_grant_is_made(box: Box) -> None:
    call_id, message = await box.create("pay", {"to": "late-policy", "amount": 4})
    form = await open_form(box, message)
    # The operator turns grants off for pay while the form is open.
    changed = POLICY + "\n[default.functions.pay]\ngrants = false\n"
    box.service.rules = OperatorPolicy.from_mapping(tomllib.loads(changed))
    refused(await box.answer(make(form)))
    assert await box.approved(call_id) is None
    assert not await box.grants(call_id)


async def test_an_agent_token_or_a_forged_stale_or_replayed_interaction_makes_no_grant(
    box: Box,
) -> None:
    call_id, message = await box.create("pay", {"to": "agent-test", "amount": 7})
    form = await open_form(box, message)
    payload = make(form)
    body = json.dumps(payload).encode()
    # The agent's own token instead of Discord's signature.
    response = await box.http.post(
        INTERACTIONS, content=body, headers={**box.agent, "Content-Type": "application/json"}
    )
    assert response.status_code == 401, response.text
    # Signed by another key (a real Ed25519 key, not the application's).
    assert (await box.post(payload, key=SigningKey.generate())).status_code == 401
    # Signed by the right key ten minutes ago.
    assert (await box.post(payload, ts=str(int(time.time()) - 600))).status_code == 401
    assert await box.approved(call_id) is None
    assert not await box.grants(call_id)
    # Sent once (accepted), then replayed: nothing more.
    assert (await box.post(payload)).status_code == 200
    assert len(await box.grants(call_id)) == 1
    assert (await box.post(payload)).status_code == 401
    assert len(await box.grants(call_id)) == 1
    # The agent's own grant API is closed to it too.
    api = await box.http.post(
        f"/functionlayer/v1/function_calls/{call_id}/grants",
        json={"agents": "project", "lifetime_seconds": 60, "max_uses": 1},
        headers=box.agent,
    )
    assert api.status_code in (401, 403), api.text


@pytest.mark.parametrize(
    "picks", ["0.project.3650d.1", "0.token.1h.1000", "7.token.1h.1", "x.token.1h.1", "0.all.1h.1"]
)
async def test_a_crafted_custom_id_with_a_choice_not_offered_makes_nothing(
    box: Box, picks: str
) -> None:
    call_id, message = await box.create("pay", {"to": "presets", "amount": 9})
    await open_form(box, message)
    crafted = interaction(f"fg:g{picks}:f:{call_id}", ALICE, message_id="ephemeral-1")
    text = refused(await box.answer(crafted))
    assert "Nothing was granted" in text
    # A crafted select value is refused the same way.
    bad_select = interaction(
        f"fg:l0.token.1h.1:f:{call_id}", ALICE, message_id="ephemeral-1", values=["3650d"]
    )
    refused(await box.answer(bad_select))
    assert await box.approved(call_id) is None
    assert not await box.grants(call_id)


async def test_someone_not_allowed_to_decide_makes_nothing(box: Box) -> None:
    call_id, message = await box.create("pay", {"to": "stranger", "amount": 9})
    # The stranger clicks the message's grant button: refused, no form.
    refused(await box.answer(click_grant(message, STRANGER)))
    # The stranger presses "Approve and grant" on the form alice opened.
    form = await open_form(box, message)
    refused(await box.answer(make(form, STRANGER)))
    assert await box.approved(call_id) is None
    assert not await box.grants(call_id)
    refusals = [e for e in await box.service.audit_trail(call_id) if e.action == "refused"]
    assert any(e.who == f"discord:{STRANGER}" for e in refusals)
