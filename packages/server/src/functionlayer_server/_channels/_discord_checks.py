"""Checks every Discord answer passes before it may decide anything: the request it names
exists and is still open, the message is a delivery of it, and the clicker is someone the
policy lets decide there (:meth:`ApprovalService.authorize`). A refusal is audited and raised
as :class:`Refused`, whose message is shown only to the clicker."""

from __future__ import annotations

from typing import Any, Protocol

from functionlayer.models import DiscordContactChannel

from functionlayer_server._channels._base import ChannelRequest, DeliveryStore, find_delivery
from functionlayer_server._channels._discord_ids import ButtonRef, kind_of
from functionlayer_server._channels._discord_messages import outcome_text
from functionlayer_server._channels._discord_parts import discord_target
from functionlayer_server._errors import ForbiddenError, NotFoundError
from functionlayer_server._policy import Identity
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["REF_KEY", "VIA", "DiscordChecks", "DiscordPoster", "Refused"]

VIA = "discord"
REF_KEY = "discord:ref:"
"""Store key prefix: what a ``custom_id`` digest stands for."""


class Refused(Exception):
    """An answer that must not decide anything; the message is shown to the clicker only."""


class DiscordPoster(Protocol):
    """What answering needs from the channel: its records and message rewrites."""

    service: ApprovalService
    settings: Settings
    deliveries: DeliveryStore
    inline: dict[tuple[str, str], str]
    confirming: dict[tuple[str, str], tuple[str, str]]
    granting: dict[tuple[str, str], tuple[str, str]]

    async def rewrite(
        self,
        request: ChannelRequest,
        deliveries: list[dict[str, Any]],
        *,
        decided: bool,
        skip: str | None,
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
        allowed = target.allowed_responder_ids
        return None if allowed is None else [Identity("discord", rid) for rid in allowed]

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
        await self.channel.service.record_audit(
            kind_of(request),
            request.call_id,
            who=f"discord:{user}" if user else "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason, **details},
        )

    async def authorize(
        self, request: ChannelRequest, user: str, channel_id: str, message_id: str
    ) -> DiscordContactChannel:
        """The target this message was delivered to, if ``user`` may answer there; else the
        refusal is audited and raised."""
        delivery = await find_delivery(
            lambda: self.channel.deliveries_of(request),
            lambda d: d.get("channel") == channel_id and d.get("message") == message_id,
            wait=bool(message_id),
        )
        target = None if delivery is None else discord_target(request, str(delivery.get("target")))
        reason: str | None = None
        if not user:
            reason = "no Discord user in the interaction"
        elif target is None:
            reason = "the message is not a delivery of this request"
        if reason is None and target is not None:
            try:
                # Who may decide is the policy's call (the directory, the operator's rules,
                # the request's responders, and this target's allowed_responder_ids).
                await self.channel.service.authorize(
                    kind_of(request),
                    request.call_id,
                    Identity("discord", user),
                    via=VIA,
                    via_identities=self.via_identities(target),
                )
            except ForbiddenError as exc:  # audited by the service
                raise Refused("You are not allowed to answer this request.") from exc
            return target
        await self.audit_refusal(
            request, user, reason or "not allowed", channel=channel_id, message=message_id
        )
        raise Refused("You are not allowed to answer this request.")
