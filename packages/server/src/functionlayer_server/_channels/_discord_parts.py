"""Small pieces of Discord shared by delivery and answers: the interaction types, which target
a message went to, who clicked, what was typed in a modal, and the REST error."""

from __future__ import annotations

from typing import Any

from functionlayer.models import DiscordContactChannel

from functionlayer_server._channels._base import ChannelRequest
from functionlayer_server._channels._discord_messages import INPUT_ID
from functionlayer_server._channels._planning import delivery_tiers

__all__ = [
    "MESSAGE_COMPONENT",
    "MODAL_SUBMIT",
    "PING",
    "PONG",
    "UPDATE_MESSAGE",
    "DiscordApiError",
    "discord_target",
    "target_key",
    "text_input",
    "user_of",
]

# Interaction types (Discord API).
PING = 1
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5
# Interaction callback types.
PONG = 1
UPDATE_MESSAGE = 7


class DiscordApiError(Exception):
    """Discord answered a REST call with an error status."""


def target_key(target: DiscordContactChannel) -> str:
    return f"{target.channel_id or ''}/{target.user_id or ''}"


def discord_target(request: ChannelRequest, key: str) -> DiscordContactChannel | None:
    for tier in delivery_tiers(request):
        for target in tier:
            if target.discord is not None and target_key(target.discord) == key:
                return target.discord
    return None


def user_of(payload: dict[str, Any]) -> str:
    """The clicker: ``member.user`` in a server channel, ``user`` in a direct message."""
    member = payload.get("member")
    user = member.get("user") if isinstance(member, dict) else None
    if not isinstance(user, dict):
        user = payload.get("user")
    if not isinstance(user, dict):
        return ""
    return str(user.get("id") or "")


def text_input(components: Any) -> str | None:
    """The value of our text input in a modal submission (rows, or label components)."""
    if isinstance(components, dict):
        if components.get("custom_id") == INPUT_ID and "value" in components:
            return str(components.get("value") or "")
        for key in ("components", "component"):
            found = text_input(components.get(key))
            if found is not None:
                return found
        return None
    if isinstance(components, list):
        for item in components:
            found = text_input(item)
            if found is not None:
                return found
    return None
