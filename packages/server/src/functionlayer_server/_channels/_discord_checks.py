"""Checks every Discord answer passes before it may decide anything: the request it names
exists and is still open, the message is a delivery of it, and the clicker is someone the
policy lets decide there (:meth:`ApprovalService.authorize`). A refusal is audited and raised
as :class:`Refused`, whose message is shown only to the clicker."""

from __future__ import annotations

from functools import partial
from typing import Any, Final, Protocol

from functionlayer.models import DiscordContactChannel

from functionlayer_server._channels._answering import (
    Refused,
    allowed_identities,
    audit_refused,
    authorize_person,
    delivered_to,
)
from functionlayer_server._channels._base import (
    ChannelRequest,
    Deliveries,
    DeliveryStore,
)
from functionlayer_server._channels._discord_ids import ButtonRef
from functionlayer_server._channels._discord_messages import outcome_text
from functionlayer_server._channels._discord_parts import discord_target
from functionlayer_server._errors import NotFoundError
from functionlayer_server._policy import Identity
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["REF_KEY", "VIA", "DiscordChecks", "DiscordPoster", "Refused"]

VIA: Final = "discord"
REF_KEY = "discord:ref:"
"""Store key prefix: what a ``custom_id`` digest stands for."""
NO_USER = "no Discord user in the interaction"


class DiscordPoster(Protocol):
    """What answering needs from the channel: its records and message rewrites."""

    service: ApprovalService
    settings: Settings
    deliveries: DeliveryStore
    inline: dict[tuple[str, str], str]
    confirming: dict[tuple[str, str], tuple[str, str]]
    granting: dict[tuple[str, str], tuple[str, str]]

    async def rewrite(
        self, request: ChannelRequest, deliveries: Deliveries, *, decided: bool, skip: str | None
    ) -> None: ...

    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]: ...

    async def group_body(
        self, request: ChannelRequest, delivery: dict[str, Any], context: str | None
    ) -> dict[str, Any] | None: ...


class DiscordChecks:
    """The checks, on the channel's records."""

    def __init__(self, channel: DiscordPoster) -> None:
        self.channel = channel

    async def check_open(self, request: ChannelRequest, user: str) -> None:
        if request.completed:
            await self.audit_refusal(request, user, "already decided")
            raise Refused("Already decided: " + outcome_text(request).replace("**", ""))

    def via_identities(self, target: DiscordContactChannel) -> list[Identity] | None:
        return allowed_identities(VIA, target)

    async def load(self, ref: ButtonRef) -> ChannelRequest:
        call_id = ref.call_id
        if call_id is None and ref.digest is not None:
            found = await self.channel.service.store.recall(REF_KEY + ref.digest)
            if found is not None and found.get("kind") == ref.kind:
                call_id = str(found.get("call_id"))
        if call_id is None:
            raise Refused("This request no longer exists on the FunctionLayer server.")
        try:
            if ref.kind == FUNCTION_CALL:
                return await self.channel.service.get_function_call(call_id)
            return await self.channel.service.get_human_contact(call_id)
        except NotFoundError as exc:
            raise Refused("This request no longer exists on the FunctionLayer server.") from exc

    async def audit_refusal(
        self, request: ChannelRequest, user: str, reason: str, **details: str
    ) -> None:
        await audit_refused(self.channel.service, request, VIA, user, reason, **details)

    async def authorize(
        self, request: ChannelRequest, user: str, channel_id: str, message_id: str
    ) -> DiscordContactChannel:
        """The target this message was delivered to, if ``user`` may answer there; else the
        refusal is audited and raised."""
        place = {"channel": channel_id, "message": message_id}
        target = await delivered_to(
            self.channel, request, place, partial(discord_target, request), wait=bool(message_id)
        )

        async def audit(reason: str) -> None:
            await self.audit_refusal(request, user, reason, **place)

        unknown = (NO_USER, "the message is not a delivery of this request")
        return await authorize_person(
            self.channel.service, request, user, target, via=VIA, unknown=unknown, audit=audit
        )
