"""What Slack's answers need from the channel (its API client and message rewrites), as a
protocol: the answer modules depend on this, not on the channel; and the message only the
clicker sees."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from functionlayer_server._channels._base import ChannelRequest
from functionlayer_server._channels._slack_blocks import escape
from functionlayer_server._service import ApprovalService

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["SlackPoster", "ephemeral"]

log = logging.getLogger("functionlayer_server.channels.slack")


class SlackPoster(Protocol):
    """What answering needs from the channel: its API client and message rewrites."""

    service: ApprovalService

    def client(self, token: str | None = None) -> AsyncWebClient: ...

    async def rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None: ...

    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]: ...


async def ephemeral(
    poster: SlackPoster,
    channel: str,
    user: str,
    text: str,
    token: str | None,
    *,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    """A message only ``user`` sees in ``channel``; a failure is logged, never raised."""
    from slack_sdk.errors import SlackApiError

    if not channel or not user:
        return
    try:
        await poster.client(token).chat_postEphemeral(
            channel=channel, user=user, text=escape(text), blocks=blocks
        )
    except (SlackApiError, RuntimeError, OSError) as exc:
        log.warning("Slack ephemeral message failed: %s", exc)
