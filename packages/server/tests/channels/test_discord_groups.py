"""Discord shows a review group (one model turn) as one message: one embed per call and one
numbered row of buttons per pending call. A click decides only its own call, the message is
rebuilt after each decision, a button of a call the message does not show decides nothing, and
a call that cannot be a row (another agent's, irreversible, past the row limit) gets its own
message. Real server, scheduler and Discord channel; Discord's REST API is the double and
interactions are signed with a real Ed25519 key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from functionlayer.models import (
    ContactChannel,
    DiscordContactChannel,
    FunctionCall,
    FunctionCallSpec,
)
from functionlayer_server._service import FUNCTION_CALL

from packages.server.tests.channels.discord_app import component_interaction, discord_app
from packages.server.tests.channels.discord_double import DiscordCall, DiscordDouble
from packages.server.tests.channels.test_discord import ALICE, Server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
async def server(tmp_path: Path, discord_double: DiscordDouble) -> AsyncIterator[Server]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[default]\ndiscord_channels = ["C-OPS"]\n')
    url = f"sqlite:///{tmp_path / 'groups.sqlite3'}"
    async with discord_app(url, discord_double, policy, {"alice": ALICE}) as (service, http, key):
        yield Server(service, http, key)


async def create(
    server: Server,
    call_id: str,
    group: str,
    *,
    token: str = "agent-1",
    amount: int = 1,
    irreversible: bool = False,
    note: str | None = None,
) -> None:
    call = FunctionCall(
        run_id="turn",
        call_id=call_id,
        spec=FunctionCallSpec(
            fn="pay",
            kwargs={"amount": amount, **({"note": note} if note else {})},
            channel=ContactChannel(discord=DiscordContactChannel(channel_id="C-OPS")),
            group_id=group,
            irreversible=irreversible or None,
        ),
    )
    _, created = await server.service.create_record(
        FUNCTION_CALL, call, created_by="agent", created_by_token=token
    )
    assert created
    await asyncio.sleep(0.3)  # delivered (one call at a time, as an agent's turn arrives)


def custom_ids(body: dict[str, Any], label: str) -> list[str]:
    return [
        b["custom_id"]
        for row in body.get("components", [])
        for b in row["components"]
        if str(b.get("label", "")).endswith(label)
    ]


def posts(discord_double: DiscordDouble) -> list[DiscordCall]:
    return discord_double.find("POST", where=lambda c: c.path.endswith("/messages"))


def click(message_id: str, custom_id: str, user: str = ALICE) -> dict[str, Any]:
    data = {"custom_id": custom_id, "component_type": 2}
    return component_interaction(message_id, user, data)


async def status(server: Server, call_id: str) -> bool | None:
    found = (await server.call(call_id)).status
    return None if found is None else found.approved


async def test_a_group_is_one_message_with_a_row_per_call(
    server: Server, discord_double: DiscordDouble
) -> None:
    for n, call_id in enumerate(["g-1", "g-2", "g-3"]):
        await create(server, call_id, "turn-A", amount=n + 1)
    await discord_double.await_for("PATCH", 2)
    assert len(posts(discord_double)) == 1  # one message for the turn
    message_id = posts(discord_double)[0].response["id"]
    latest = discord_double.find("PATCH")[-1].body
    assert custom_ids(latest, "Approve") == ["fl:ap:f:g-1", "fl:ap:f:g-2", "fl:ap:f:g-3"]
    assert [e["title"] for e in latest["embeds"]] == ["Call 1", "Call 2", "Call 3"]
    assert all("amount:" in e["description"] for e in latest["embeds"])  # every call in full
    assert latest["allowed_mentions"] == {"parse": []}

    # A click on row 2 decides call 2 only; the message comes back with the other rows open.
    answer = (await server.post(click(message_id, "fl:ap:f:g-2"))).json()
    assert answer["type"] == 7, answer
    assert custom_ids(answer["data"], "Approve") == ["fl:ap:f:g-1", "fl:ap:f:g-3"]
    assert "**Approved** by **alice**" in answer["data"]["embeds"][1]["description"]
    assert [await status(server, c) for c in ("g-1", "g-2", "g-3")] == [None, True, None]
    assert ("approved", "alice", "discord") in await server.actions("g-2")
    assert not [a for a in await server.actions("g-1") if a[0] == "approved"]

    # Row 1 likewise; row 3 stays open.
    await server.post(click(message_id, "fl:ap:f:g-1"))
    assert [await status(server, c) for c in ("g-1", "g-2", "g-3")] == [True, True, None]


async def test_a_button_of_a_call_the_message_does_not_show_decides_nothing(
    server: Server, discord_double: DiscordDouble
) -> None:
    await create(server, "mine-1", "turn-B")
    await create(server, "mine-2", "turn-B")
    await create(server, "theirs-1", "turn-B", token="agent-2", amount=999)
    await discord_double.await_for("POST", 2, where=lambda c: c.path.endswith("/messages"))
    # Another agent's call under the same group id is its own message, not a row.
    assert len(posts(discord_double)) == 2
    group = posts(discord_double)[0].response["id"]
    latest = discord_double.find("PATCH")[-1].body
    assert "theirs-1" not in json.dumps(latest)
    # A crafted click for that call on the group message: refused, nothing approved.
    answer = (await server.post(click(group, "fl:ap:f:theirs-1"))).json()
    assert answer["type"] == 4 and answer["data"]["flags"] == 64, answer
    assert await status(server, "theirs-1") is None
    refusals = [a for a in await server.actions("theirs-1") if a[0] == "refused"]
    assert refusals


async def test_calls_that_cannot_be_rows_get_their_own_message(
    server: Server, discord_double: DiscordDouble
) -> None:
    for n in range(6):
        await create(server, f"many-{n}", "turn-C", amount=n)
    await create(server, "wipe-1", "turn-C", irreversible=True)
    await discord_double.await_for("POST", 3, where=lambda c: c.path.endswith("/messages"))
    messages = posts(discord_double)
    assert len(messages) == 3  # five rows, the sixth call, the irreversible call
    latest = discord_double.find("PATCH")[-1].body
    assert len(latest["embeds"]) == 5 and len(latest["components"]) == 5
    assert "fl:ap:f:many-5" in json.dumps(messages[1].body)
    assert "wipe-1" in json.dumps(messages[2].body)


async def test_a_group_never_holds_more_than_it_can_show_in_full(
    server: Server, discord_double: DiscordDouble
) -> None:
    notes = [f"{chr(ord('a') + n)}" * 1100 for n in range(4)]
    for n, note in enumerate(notes):
        await create(server, f"big-{n}", "turn-D", note=note)
    await discord_double.await_for("POST", 2, where=lambda c: c.path.endswith("/messages"))
    group = discord_double.find("PATCH")[-1].body
    assert len(group["embeds"]) < len(notes)  # the rest had their own message
    for embed in group["embeds"]:
        assert any(note in embed["description"] for note in notes)  # each row in full
    assert sum(len(e["title"]) + len(e["description"]) for e in group["embeds"]) <= 6000
