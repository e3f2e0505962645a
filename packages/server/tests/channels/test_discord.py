"""Discord end to end, in process: the real server (store, scheduler, dispatcher, Discord
channel) posts over real HTTP to a local double of Discord's REST API; interactions are signed
with a real Ed25519 key pair, the way Discord signs them, and posted to the real endpoint."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer.models import (
    ContactChannel,
    DiscordContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
    ResponseOption,
)
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings
from nacl.signing import SigningKey

from packages.server.tests.channels.discord_app import BOT_TOKEN, discord_app
from packages.server.tests.channels.discord_double import DiscordCall, DiscordDouble

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

ALICE, BOB, STRANGER = "111111111111111111", "222222222222222222", "999999999999999999"
INTERACTIONS = "/channels/discord/interactions"
_ids = itertools.count(1)


class Server:
    def __init__(self, service: ApprovalService, http: httpx.AsyncClient, key: SigningKey):
        self.service = service
        self.http = http
        self.key = key

    async def post(
        self,
        payload: dict[str, Any],
        *,
        key: SigningKey | None = None,
        timestamp: str | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            ts = timestamp or str(int(time.time()))
            signature = (key or self.key).sign(ts.encode() + body).signature.hex()
            headers |= {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts}
        return await self.http.post(INTERACTIONS, content=body, headers=headers)

    async def call(self, call_id: str) -> FunctionCall:
        return await self.service.get_function_call(call_id)

    async def actions(self, call_id: str) -> list[tuple[str, str, str]]:
        return [(e.action, e.who, e.via) for e in await self.service.audit_trail(call_id)]


@pytest.fixture
async def server(tmp_path: Path, discord_double: DiscordDouble) -> AsyncIterator[Server]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[default]\ndiscord_channels = ["C-OPS", "C-SRE"]\n')
    url = f"sqlite:///{tmp_path / 'discord.sqlite3'}"
    async with discord_app(url, discord_double, policy, {"alice": ALICE, "bob": BOB}) as (
        service,
        http,
        key,
    ):
        yield Server(service, http, key)


def discord(**kwargs: Any) -> ContactChannel:
    return ContactChannel(discord=DiscordContactChannel(**kwargs))


async def create_call(server: Server, call_id: str, **spec: Any) -> FunctionCall:
    spec.setdefault("channel", discord(channel_id="C-OPS", context="the ops team"))
    kwargs = spec.pop("kwargs", {"service": "billing", "version": "v2"})
    call = FunctionCall(
        run_id="discord-agent",
        call_id=call_id,
        spec=FunctionCallSpec(fn="deploy", kwargs=kwargs, **spec),
    )
    stored, created = await server.service.create_function_call(call)
    assert created
    return stored


async def posted(discord_double: DiscordDouble, call_id: str, count: int = 1) -> DiscordCall:
    """The ``count``-th message posted for ``call_id``."""
    return (
        await discord_double.await_for(
            "POST",
            count,
            where=lambda c: (
                c.path.endswith("/messages")
                and any(
                    f'"fl:{a}:{call_id}"' in json.dumps(c.body.get("components"))
                    for a in ("ap:f", "rp:h")
                )
            ),
        )
    )[count - 1]


def buttons(message: DiscordCall) -> list[dict[str, Any]]:
    return [b for row in message.body["components"] for b in row["components"]]


def button(message: DiscordCall, label: str) -> dict[str, Any]:
    return next(b for b in buttons(message) if b["label"] == label)


def click(message: DiscordCall, label: str, user: str, *, dm: bool = False) -> dict[str, Any]:
    """A MESSAGE_COMPONENT interaction, as Discord sends it for a button click."""
    payload: dict[str, Any] = {
        "id": f"interaction-{next(_ids)}",
        "application_id": "app",
        "type": 3,
        "token": "interaction-token",
        "version": 1,
        "channel_id": message.response["channel_id"],
        "message": {"id": message.response["id"], "channel_id": message.response["channel_id"]},
        "data": {"custom_id": button(message, label)["custom_id"], "component_type": 2},
    }
    who = {"id": user, "username": f"user{user[:3]}"}
    if dm:
        payload["user"] = who
    else:
        payload["guild_id"] = "G1"
        payload["member"] = {"user": who}
    return payload


def submit(message: DiscordCall, modal: dict[str, Any], user: str, text: str) -> dict[str, Any]:
    """A MODAL_SUBMIT interaction for ``modal`` (a type 9 response), with ``text`` typed in."""
    data = modal["data"]
    text_input = data["components"][0]["components"][0]
    return {
        "id": f"interaction-{next(_ids)}",
        "type": 5,
        "token": "interaction-token",
        "channel_id": message.response["channel_id"],
        "message": {"id": message.response["id"], "channel_id": message.response["channel_id"]},
        "member": {"user": {"id": user}},
        "data": {
            "custom_id": data["custom_id"],
            "components": [
                {
                    "type": 1,
                    "components": [
                        {"type": 4, "custom_id": text_input["custom_id"], "value": text}
                    ],
                }
            ],
        },
    }


def is_ephemeral(answer: dict[str, Any]) -> bool:
    return answer["type"] == 4 and answer["data"]["flags"] == 64


async def test_ping_is_answered_with_pong(server: Server) -> None:
    response = await server.post({"id": "ping-1", "type": 1, "application_id": "app"})
    assert response.status_code == 200 and response.json() == {"type": 1}


async def test_delivery_escapes_arguments_and_pings_nobody(
    server: Server, discord_double: DiscordDouble
) -> None:
    hostile = "@everyone @here <@&123> <@456> **bold** ```\n# heading\n[x](http://evil)"
    await create_call(
        server,
        "dc-content",
        description="Deploy *now* @everyone",
        kwargs={"note": hostile},
        reject_options=[ResponseOption(name="freeze", title="Change freeze")],
    )
    message = await posted(discord_double, "dc-content")
    assert message.path == "/channels/C-OPS/messages"
    assert message.authorization == f"Bot {BOT_TOKEN}"
    assert message.body["allowed_mentions"] == {"parse": []}
    content = message.body["content"]
    assert "**Approve deploy?**" in content and "the ops team" in content
    assert "Deploy \\*now\\* @\u200beveryone" in content  # markdown escaped in prose
    assert content.count("```") == 2  # the arguments' code block cannot be closed early
    assert "@everyone" not in content and "@here" not in content and "<@456>" not in content
    assert "\nnote:\n    @\u200beveryone" in content and "run discord\\-agent" in content
    rows = message.body["components"]
    assert all(row["type"] == 1 for row in rows)
    labels = {b["label"]: b for b in buttons(message)}
    assert labels["Approve"]["type"] == 2 and labels["Approve"]["style"] == 3
    assert labels["Approve"]["custom_id"] == "fl:ap:f:dc-content"
    assert labels["Reject…"]["custom_id"] == "fl:rj:f:dc-content"
    assert labels["Change freeze"]["custom_id"] == "fl:ro0:f:dc-content"
    assert labels["Open in inbox"]["style"] == 5 and "dc-content" in labels["Open in inbox"]["url"]
    delivered = [a for a in await server.actions("dc-content") if a[0] == "delivered"]
    assert delivered == [("delivered", "functionlayer-server", "discord")]


async def test_user_target_opens_a_direct_message(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create_call(server, "dc-dm", channel=discord(user_id=ALICE))
    opened = await discord_double.await_for("POST", where=lambda c: c.path == "/users/@me/channels")
    assert opened[0].body == {"recipient_id": ALICE}
    message = await posted(discord_double, "dc-dm")
    assert message.path == f"/channels/DM-{ALICE}/messages"


async def test_approve_by_a_linked_person_updates_every_message(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create_call(
        server,
        "dc-approve",
        channel=discord(channel_id="C-OPS"),
        policy={"channels": [discord(channel_id="C-SRE")]},
    )
    await discord_double.await_for("POST", 2, where=lambda c: c.path.endswith("/messages"))
    ops = next(c for c in discord_double.find("POST") if c.path == "/channels/C-OPS/messages")
    sre = next(c for c in discord_double.find("POST") if c.path == "/channels/C-SRE/messages")

    response = await server.post(click(ops, "Approve", ALICE))
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == 7  # UPDATE_MESSAGE for the clicked message
    assert answer["data"]["components"] == []
    assert "**Approved** by **alice** via discord" in answer["data"]["content"]
    assert answer["data"]["allowed_mentions"] == {"parse": []}
    status = (await server.call("dc-approve")).status
    assert status is not None and status.approved is True
    assert status.responded_by == "alice" and status.responded_via == "discord"

    # The other delivery is edited over REST; the clicked one is left to the response.
    patch = (await discord_double.await_for("PATCH"))[0]
    assert patch.path == f"/channels/C-SRE/messages/{sre.response['id']}"
    assert patch.body["components"] == [] and "alice" in patch.body["content"]
    assert patch.authorization == f"Bot {BOT_TOKEN}"
    assert not discord_double.find("PATCH", lambda c: c.path.endswith(ops.response["id"]))

    # A second click (another person, the other message) decides nothing and says so.
    again = (await server.post(click(sre, "Approve", BOB))).json()
    assert is_ephemeral(again) and "Already decided" in again["data"]["content"]
    actions = await server.actions("dc-approve")
    assert [a for a in actions if a[0] == "approved"] == [("approved", "alice", "discord")]
    assert ("refused", f"discord:{BOB}", "discord") in actions


async def test_reject_through_the_modal_stores_the_feedback(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create_call(server, "dc-reject")
    message = await posted(discord_double, "dc-reject")
    modal = (await server.post(click(message, "Reject…", ALICE))).json()
    assert modal["type"] == 9 and modal["data"]["custom_id"] == "mfl:rj:f:dc-reject"
    text_input = modal["data"]["components"][0]["components"][0]
    assert text_input["type"] == 4 and text_input["required"] is True
    assert (await server.call("dc-reject")).status.approved is None  # type: ignore[union-attr]

    empty = (await server.post(submit(message, modal, ALICE, "   "))).json()
    assert is_ephemeral(empty)
    assert (await server.call("dc-reject")).status.approved is None  # type: ignore[union-attr]

    done = (await server.post(submit(message, modal, ALICE, "use the *staging* copy"))).json()
    assert done["type"] == 7 and done["data"]["components"] == []
    assert "**Rejected** by **alice**" in done["data"]["content"]
    assert "use the \\*staging\\* copy" in done["data"]["content"]
    status = (await server.call("dc-reject")).status
    assert status is not None and status.approved is False
    assert status.comment == "use the *staging* copy" and status.responded_by == "alice"


async def test_reject_option_button(server: Server, discord_double: DiscordDouble) -> None:
    await create_call(
        server,
        "dc-option",
        reject_options=[ResponseOption(name="freeze", title="Change freeze", prompt_fill="no")],
    )
    message = await posted(discord_double, "dc-option")
    answer = (await server.post(click(message, "Change freeze", ALICE))).json()
    assert answer["type"] == 7 and "(freeze)" in answer["data"]["content"]
    status = (await server.call("dc-option")).status
    assert status is not None and status.reject_option_name == "freeze"


async def test_reply_to_a_human_contact_in_a_direct_message(
    server: Server, discord_double: DiscordDouble
) -> None:
    contact = HumanContact(
        run_id="discord-agent",
        call_id="dc-contact",
        spec=HumanContactSpec(
            msg="Which region should I deploy to?",
            subject="Region",
            channel=discord(user_id=ALICE),
        ),
    )
    await server.service.create_human_contact(contact)
    message = await posted(discord_double, "dc-contact")
    assert buttons(message)[0]["label"] == "Reply…"
    modal = (await server.post(click(message, "Reply…", ALICE, dm=True))).json()
    assert modal["type"] == 9
    payload = submit(message, modal, ALICE, "eu-west-1")
    payload["user"] = payload.pop("member")["user"]  # direct messages carry `user`
    answer = (await server.post(payload)).json()
    assert answer["type"] == 7 and "**Answered** by **alice**" in answer["data"]["content"]
    stored = await server.service.get_human_contact("dc-contact")
    assert stored.status is not None and stored.status.response == "eu-west-1"
    assert stored.status.responded_by == "alice"


async def test_bad_signatures_stale_and_replayed_interactions_are_refused(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create_call(server, "dc-auth")
    message = await posted(discord_double, "dc-auth")
    approve = click(message, "Approve", ALICE)

    forged = await server.post(approve, key=SigningKey.generate())
    stale = await server.post(approve, timestamp=str(int(time.time()) - 400))
    future = await server.post(approve, timestamp=str(int(time.time()) + 400))
    unsigned = await server.post(approve, signed=False)
    assert [r.status_code for r in (forged, stale, future, unsigned)] == [401] * 4
    garbage = await server.http.post(
        INTERACTIONS,
        content=b"{}",
        headers={"X-Signature-Ed25519": "zz", "X-Signature-Timestamp": str(int(time.time()))},
    )
    assert garbage.status_code == 401
    assert (await server.call("dc-auth")).status.approved is None  # type: ignore[union-attr]

    # Opening the reject form decides nothing; sending the same interaction again is refused.
    reject = click(message, "Reject…", ALICE)
    assert (await server.post(reject)).json()["type"] == 9
    replayed = await server.post(reject)  # freshly signed: only the interaction id repeats
    assert replayed.status_code == 401
    refused = [a for a in await server.service.audit_trail("dc-auth") if a.action == "refused"]
    assert refused and refused[-1].details["reason"] == "replayed Discord interaction"
    assert (await server.call("dc-auth")).status.approved is None  # type: ignore[union-attr]

    # The refused attempts did not use up the genuine click.
    assert (await server.post(approve)).json()["type"] == 7
    assert (await server.call("dc-auth")).status.approved is True  # type: ignore[union-attr]


async def test_unlinked_and_not_allowed_users_are_refused_and_audited(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create_call(
        server, "dc-refuse", channel=discord(channel_id="C-OPS", allowed_responder_ids=[ALICE])
    )
    message = await posted(discord_double, "dc-refuse")

    stranger = (await server.post(click(message, "Approve", STRANGER))).json()
    assert is_ephemeral(stranger) and "not allowed" in stranger["data"]["content"]
    bob = (await server.post(click(message, "Reject…", BOB))).json()  # even the form
    assert is_ephemeral(bob) and "not allowed" in bob["data"]["content"]
    assert (await server.call("dc-refuse")).status.approved is None  # type: ignore[union-attr]
    refusals = [
        (e.who, e.details.get("reason", ""))
        for e in await server.service.audit_trail("dc-refuse")
        if e.action == "refused"
    ]
    assert (f"discord:{STRANGER}", "the identity is not linked to any person in the directory") in (
        refusals
    )
    assert any(
        who == f"discord:{BOB}" and "bob is not among the persons" in r for who, r in refusals
    ), refusals

    # A click on a message that is not a delivery of the request is refused too.
    elsewhere = click(message, "Approve", ALICE)
    elsewhere["message"]["id"] = "123"
    assert is_ephemeral((await server.post(elsewhere)).json())
    assert (await server.call("dc-refuse")).status.approved is None  # type: ignore[union-attr]

    assert (await server.post(click(message, "Approve", ALICE))).json()["type"] == 7


async def test_a_decision_elsewhere_edits_the_discord_messages(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create_call(server, "dc-elsewhere")
    message = await posted(discord_double, "dc-elsewhere")
    await server.service.respond_function_call(
        "dc-elsewhere",
        FunctionCallStatus(approved=False, comment="not today"),
        responder="user:bob",
        via="inbox",
    )
    patch = (await discord_double.await_for("PATCH"))[0]
    assert patch.path == f"/channels/C-OPS/messages/{message.response['id']}"
    assert patch.body["components"] == []
    assert "**Rejected** by **bob** via inbox: not today" in patch.body["content"]


async def test_long_call_ids_fit_in_custom_ids(
    server: Server, discord_double: DiscordDouble
) -> None:
    call_id = "long-" + "x" * 200
    await create_call(server, call_id)
    message = (
        await discord_double.await_for("POST", where=lambda c: c.path.endswith("/messages"))
    )[0]
    assert all(len(b.get("custom_id", "")) <= 100 for b in buttons(message))
    assert (await server.post(click(message, "Approve", ALICE))).json()["type"] == 7
    assert (await server.call(call_id)).status.approved is True  # type: ignore[union-attr]


async def test_routing_outside_the_operator_rules_is_refused(
    server: Server, discord_double: DiscordDouble
) -> None:
    token = await server.service.create_token("agent")
    headers = {"Authorization": f"Bearer {token}"}

    def body(call_id: str, **target: Any) -> dict[str, Any]:
        return {
            "run_id": "r",
            "call_id": call_id,
            "spec": {"fn": "deploy", "kwargs": {}, "channel": {"discord": target}},
        }

    for call_id, target in [
        ("dc-route-1", {"channel_id": "C-SECRET"}),
        ("dc-route-2", {"user_id": STRANGER}),
        ("dc-route-3", {"channel_id": "C-OPS", "allowed_responder_ids": [STRANGER]}),
        ("dc-route-4", {}),
    ]:
        response = await server.http.post(
            "/functionlayer/v1/function_calls", json=body(call_id, **target), headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "routing_refused"
    allowed = await server.http.post(
        "/functionlayer/v1/function_calls",
        json=body("dc-route-ok", user_id=BOB),
        headers=headers,
    )
    assert allowed.status_code in (200, 201), allowed.text
    await posted(discord_double, "dc-route-ok")
    contents = " ".join(str(c.body.get("content", "")) for c in discord_double.find("POST"))
    assert not any(f"dc-route-{i}" in contents for i in "1234")  # refused: nothing was sent


def test_settings_accept_the_discord_environment_names() -> None:
    settings = Settings.from_env(
        {
            "DISCORD_BOT_TOKEN": "bot",
            "DISCORD_PUBLIC_KEY": "ab" * 32,
            "DISCORD_API_BASE": "http://127.0.0.1:1/api",
            "FUNCTIONLAYER_SERVER_DISCORD_BOT_TOKEN": "preferred",
        }
    )
    assert settings.discord_bot_token == "preferred"
    assert settings.discord_public_key == "ab" * 32
    assert settings.discord_api_base == "http://127.0.0.1:1/api"
    assert Settings.from_env({}).discord_api_base == "https://discord.com/api/v10"


async def test_arguments_too_long_to_show_cannot_be_approved_in_discord(
    server: Server, discord_double: DiscordDouble
) -> None:
    """No Approve button when the message cannot show every argument (hidden characters marked
    as they are shown), and an Approve click for such a call (a message from before, a crafted
    interaction) is refused: the person decides in the inbox."""
    await create_call(
        server, "dc-long", kwargs={"to": "eve\u200b@evil.example", "body": "x" * 3000}
    )
    message = (
        await discord_double.await_for(
            "POST",
            where=lambda c: (
                c.path.endswith("/messages") and "fl:rj:f:dc-long" in json.dumps(c.body)
            ),
        )
    )[0]
    content = message.body["content"]
    assert "eve⟨U+200B⟩@" in content and "too long to show here in full" in content
    assert [b["label"] for b in buttons(message)] == ["Reject…", "Open in inbox"]
    forged = click(message, "Reject…", ALICE)
    forged["data"]["custom_id"] = "fl:ap:f:dc-long"
    answer = (await server.post(forged)).json()
    assert is_ephemeral(answer) and "cannot approve" in answer["data"]["content"]
    status = (await server.call("dc-long")).status
    assert status is not None and status.approved is None


async def test_irreversible_function_takes_a_confirm_click_and_context_is_an_inert_embed(
    server: Server, discord_double: DiscordDouble
) -> None:
    from functionlayer.models import RequestContext

    context = RequestContext(user_request="@everyone [approve](http://evil) \u200bnow")
    await create_call(server, "dc-irrev", irreversible=True, context=context)
    message = await posted(discord_double, "dc-irrev")
    [embed] = message.body["embeds"]
    assert embed["title"] == "From the agent — may be wrong or injected"
    assert embed["description"].count("```") == 2  # quoted in a code block it cannot close
    assert "@\u200beveryone" in embed["description"] and "⟨U+200B⟩now" in embed["description"]
    assert "Irreversible" in message.body["content"]

    first = (await server.post(click(message, "Approve…", ALICE))).json()
    # Nothing decided: a confirm button only the clicker sees.
    assert is_ephemeral(first)
    assert (await server.call("dc-irrev")).status.approved is None  # type: ignore[union-attr]
    [confirm] = [b for row in first["data"]["components"] for b in row["components"]]
    assert confirm["custom_id"] == "fl:ac:f:dc-irrev"

    def on_ephemeral(user: str) -> dict[str, Any]:
        payload = click(message, "Approve…", user)
        payload["message"] = {"id": "ephemeral-1", "channel_id": message.response["channel_id"]}
        payload["data"]["custom_id"] = confirm["custom_id"]
        return payload

    # Bob never clicked Approve: his confirm is refused; alice's confirm approves.
    refused = (await server.post(on_ephemeral(BOB))).json()
    assert is_ephemeral(refused) and "click Approve" in refused["data"]["content"]
    assert (await server.call("dc-irrev")).status.approved is None  # type: ignore[union-attr]
    done = (await server.post(on_ephemeral(ALICE))).json()
    assert done["type"] == 7, done
    status = (await server.call("dc-irrev")).status
    assert status is not None and status.approved is True and status.responded_by == "alice"
