"""What Slack's answers need from the channel (its API client and message rewrites), as a
protocol: the answer modules depend on this, not on the channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from functionlayer_server._channels._base import ChannelRequest
from functionlayer_server._service import ApprovalService

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["SlackPoster"]


class SlackPoster(Protocol):
    """What answering needs from the channel: its API client and message rewrites."""

    service: ApprovalService

    def client(self, token: str | None = None) -> AsyncWebClient: ...

    async def ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        token: str | None,
        *,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None: ...

    async def rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None: ...

    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]: ...
