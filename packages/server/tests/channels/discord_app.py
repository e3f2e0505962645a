"""The real server with Discord on, for Discord tests: the channel posts to the local double and
interactions must be signed with the returned Ed25519 key (a real key pair, as Discord signs)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from functionlayer_server._app import create_app
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings
from nacl.signing import SigningKey

from packages.server.tests.channels.discord_double import DiscordDouble

BOT_TOKEN = "discord-bot-token-for-tests"


@asynccontextmanager
async def discord_app(
    database_url: str, double: DiscordDouble, policy: Path, persons: dict[str, str]
) -> AsyncIterator[tuple[ApprovalService, httpx.AsyncClient, SigningKey]]:
    """The app on ``database_url`` with the policy file ``policy`` and ``persons`` (name ->
    Discord id) in the directory: its service, an HTTP client and the application's key."""
    key = SigningKey.generate()
    settings = Settings(
        database_url=database_url,
        discord_bot_token=BOT_TOKEN,
        discord_public_key=key.verify_key.encode().hex(),
        discord_api_base=double.api_base,
        scheduler_interval_seconds=0.05,
        policy_file=str(policy),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        service: ApprovalService = app.state.service
        for name, discord_id in persons.items():
            await service.accounts.create_person(name, discord_ids=[discord_id])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield service, http, key


def component_interaction(message_id: str, user: str, data: dict[str, Any]) -> dict[str, Any]:
    """A MESSAGE_COMPONENT interaction (a click or a pick) by ``user`` in the guild, on the
    message ``message_id`` in C-OPS, with a fresh interaction id."""
    return {
        "id": f"interaction-{uuid.uuid4().hex}",
        "type": 3,
        "channel_id": "C-OPS",
        "guild_id": "G1",
        "member": {"user": {"id": user}},
        "message": {"id": message_id, "channel_id": "C-OPS"},
        "data": data,
    }
