"""Slack shows a review group (one model turn) as one message, one row per call, each with its
own buttons: a click decides only its own call, the message is rebuilt after each decision, and
another agent's call under the same group id gets its own message. Real Slack channel and
scheduler; the Slack Web API is the double."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from functionlayer.models import FunctionCall, FunctionCallSpec
from functionlayer_server._scheduler import ManualClock
from functionlayer_server._service import FUNCTION_CALL

from packages.server.tests.channels.slack_double import SlackCall, SlackDouble, block_actions
from packages.server.tests.channels.test_routing import Server, running, settle, slack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
async def server(tmp_path: Path, slack_double: SlackDouble) -> AsyncIterator[Server]:
    async with running(tmp_path / "groups.sqlite3", slack_double, ManualClock()) as srv:
        yield srv


async def create(
    server: Server, call_id: str, group: str, *, token: str = "agent-1", amount: int = 1
) -> None:
    call = FunctionCall(
        run_id="turn",
        call_id=call_id,
        spec=FunctionCallSpec(
            fn="pay", kwargs={"amount": amount}, channel=slack("C-ONE"), group_id=group
        ),
    )
    _, created = await server.service.create_record(
        FUNCTION_CALL, call, created_by="agent", created_by_token=token
    )
    assert created


def buttons(blocks: list[dict[str, Any]], prefix: str) -> list[str]:
    """The call ids of the buttons whose action id starts with ``prefix``."""
    return [
        json.loads(e["value"])["call_id"]
        for b in blocks
        for e in b.get("elements", [])
        if str(e.get("action_id", "")).startswith(prefix)
    ]


def click_for(message: SlackCall, call_id: str, user: str, prefix: str) -> dict[str, Any]:
    payload = block_actions(message, user, prefix)
    for block in message.blocks():
        for element in block.get("elements", []):
            if (
                str(element.get("action_id", "")).startswith(prefix)
                and json.loads(element["value"])["call_id"] == call_id
            ):
                payload["actions"] = [
                    {"action_id": element["action_id"], "value": element["value"]}
                ]
                return payload
    raise AssertionError(f"no {prefix} button for {call_id}")


async def test_a_group_is_one_message_with_a_row_per_call(
    server: Server, slack_double: SlackDouble
) -> None:
    for n, call_id in enumerate(["g-1", "g-2", "g-3"]):
        await create(server, call_id, "turn-A", amount=n + 1)
    await slack_double.await_for("chat.update", 2)
    await settle()
    posts = slack_double.calls_to("chat.postMessage")
    assert len(posts) == 1  # one message for the turn
    latest = slack_double.calls_to("chat.update")[-1]
    assert buttons(latest.blocks(), "fl_approve") == ["g-1", "g-2", "g-3"]
    block_ids = [b["block_id"] for b in latest.blocks() if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))  # unique, as Slack requires

    # A click on row 2 decides call 2 only; the message is rebuilt with the other rows open.
    message = SlackCall(
        method="chat.postMessage",
        token=posts[0].token,
        params={**posts[0].params, "blocks": latest.blocks()},
        response=posts[0].response,
    )
    answer = await server.click(click_for(message, "g-2", "U0ONE", "fl_approve"))
    assert answer.status_code == 200
    await settle()
    states = {
        cid: (await server.service.get_function_call(cid)).status for cid in ("g-1", "g-2", "g-3")
    }
    assert states["g-2"] is not None and states["g-2"].approved is True
    assert states["g-1"] is not None and states["g-1"].approved is None
    assert states["g-3"] is not None and states["g-3"].approved is None
    rebuilt = slack_double.calls_to("chat.update")[-1].blocks()
    assert buttons(rebuilt, "fl_approve") == ["g-1", "g-3"]
    assert "g-2" in json.dumps(rebuilt)  # still shown, as decided


async def test_another_agents_call_with_the_same_group_id_is_its_own_message(
    server: Server, slack_double: SlackDouble
) -> None:
    await create(server, "mine-1", "turn-B")
    await create(server, "theirs-1", "turn-B", token="agent-2", amount=999)
    await slack_double.await_for("chat.postMessage", 2)
    await settle()
    assert not slack_double.calls_to("chat.update")
    posted = {
        buttons(p.blocks(), "fl_approve")[0] for p in slack_double.calls_to("chat.postMessage")
    }
    assert posted == {"mine-1", "theirs-1"}
