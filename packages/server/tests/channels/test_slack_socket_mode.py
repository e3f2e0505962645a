"""Socket Mode: the real slack_sdk Socket Mode client (aiohttp) connects to the double's
websocket (apps.connections.open returns a ws://127.0.0.1 URL) and answers arrive over it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from functionlayer.models import (
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    SlackContactChannel,
)
from functionlayer_server._app import create_app
from functionlayer_server._scheduler import ManualClock
from functionlayer_server._settings import Settings

from packages.server.tests.channels.conftest import BOT_TOKEN
from packages.server.tests.channels.slack_double import SlackDouble, block_actions

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_socket_mode_answers_decide(tmp_path: Path, slack_double: SlackDouble) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[projects.default]\nslack_channels = ["C-SOCK"]\n')
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'socket.sqlite3'}",
        policy_file=str(policy),
        slack_bot_token=BOT_TOKEN,
        slack_api_url=slack_double.api_url,
        slack_socket_mode_app_token="xapp-test-token",
        scheduler_interval_seconds=0.05,
    )
    app = create_app(settings, clock=ManualClock())
    async with app.router.lifespan_context(app):
        service = app.state.service
        # Both Slack users are persons of the directory; only U0OK is allowed on this target.
        await service.accounts.create_person("oskar", slack_ids=["U0OK"])
        await service.accounts.create_person("nora", slack_ids=["U0NO"])
        opened = await slack_double.await_for("apps.connections.open")
        assert opened[0].token == "xapp-test-token"
        await asyncio.to_thread(slack_double.wait_for_socket)
        channel = ContactChannel(
            slack=SlackContactChannel(channel_or_user_id="C-SOCK", allowed_responder_ids=["U0OK"])
        )
        await service.create_function_call(
            FunctionCall(
                run_id="r",
                call_id="sock-1",
                spec=FunctionCallSpec(fn="f", kwargs={}, channel=channel),
            )
        )
        message = (await slack_double.await_for("chat.postMessage"))[0]

        # Not allowed: refused over the socket too, nothing decided.
        refused = slack_double.push_interactive(block_actions(message, "U0NO", "fl_approve"))
        await asyncio.to_thread(slack_double.wait_ack, refused)
        assert (await service.get_function_call("sock-1")).status.approved is None

        envelope = slack_double.push_interactive(block_actions(message, "U0OK", "fl_approve"))
        await asyncio.to_thread(slack_double.wait_ack, envelope)
        call = await service.get_function_call("sock-1")
        assert call.status is not None and call.status.approved is True
        assert call.status.responded_by == "oskar" and call.status.responded_via == "slack"
        await slack_double.await_for("chat.update")
