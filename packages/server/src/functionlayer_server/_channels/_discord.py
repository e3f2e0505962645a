"""Discord: post requests as messages with buttons and take the answers from interactions.

Delivery uses the REST API (``discord_api_base``, ``Authorization: Bot <token>``): a message in
the target's ``channel_id``, or in a direct message opened with ``POST /users/@me/channels`` for
a ``user_id``. Answers arrive on ``POST /channels/discord/interactions`` (the application's
Interactions Endpoint URL), signed by Discord: Ed25519 over ``timestamp + raw body`` with the
application's public key. Unsigned, forged, stale (more than 5 minutes) and replayed
interactions get ``401`` and decide nothing. Who may decide is the policy's call
(:meth:`ApprovalService.authorize`); refusals are shown to the clicker only (an ephemeral
message) and audited. Decisions go through the service, so a second click never decides twice.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from functionlayer.models import ContactChannel, DiscordContactChannel, FunctionCall

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

from functionlayer_server._channels import _discord_grants as grants
from functionlayer_server._channels import _group_messages as shared
from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
)
from functionlayer_server._channels._core import MessageChannel, rewrite_each
from functionlayer_server._channels._discord_answers import VIA, DiscordAnswers
from functionlayer_server._channels._discord_checks import REF_KEY
from functionlayer_server._channels._discord_groups import KEYS, MAX_ROWS, group_message, joinable
from functionlayer_server._channels._discord_ids import digest, kind_of, needs_digest
from functionlayer_server._channels._discord_messages import decided_message, request_message
from functionlayer_server._channels._discord_parts import (
    PING,
    PONG,
    DiscordApiError,
    discord_target,
    target_key,
)
from functionlayer_server._channels._rest import call_json, path_segment, required_id
from functionlayer_server._extras import require_extra
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["INTERACTIONS_PATH", "MAX_AGE_SECONDS", "DiscordChannel", "create_channel"]

log = logging.getLogger("functionlayer_server.channels.discord")

INTERACTIONS_PATH = "/channels/discord/interactions"
MAX_AGE_SECONDS = 300.0
"""Interactions signed longer ago than this (or this far in the future) are refused."""


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> DiscordChannel | None:
    """Discord is on when the server has a bot token. Interactions are refused (401) until the
    application's public key is configured too."""
    if not settings.discord_bot_token:
        return None
    require_extra("discord", "nacl.signing")  # or name the extra to install (PyNaCl)
    return DiscordChannel(service, settings, deliveries)


def _verify_key(public_key: str | None) -> VerifyKey | None:
    if not public_key:
        return None
    from nacl.signing import VerifyKey

    try:
        return VerifyKey(bytes.fromhex(public_key.strip()))
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "FUNCTIONLAYER_SERVER_DISCORD_PUBLIC_KEY (DISCORD_PUBLIC_KEY) must be the "
            "application's public key: 64 hexadecimal characters"
        ) from exc


def _unauthorized(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": "unauthorized"}, status_code=401)


_segment = partial(path_segment, platform="Discord")


class DiscordChannel(MessageChannel):
    name = VIA
    inbound_path = INTERACTIONS_PATH

    def prepare(self) -> None:
        self.verify_key = _verify_key(self.settings.discord_public_key)
        # (kind, call_id) -> the message an UPDATE_MESSAGE response is rewriting right now, so
        # update() leaves it alone and PATCHes only the other deliveries.
        self.inline: dict[tuple[str, str], str] = {}
        # (user, call_id) -> (channel, message) of the delivery whose Approve that user clicked
        # on an irreversible function: the confirm button (on a message only they see) is
        # checked against that delivery again. Per process and bounded; a confirm this process
        # does not know fails closed ("click Approve again").
        self.confirming: dict[tuple[str, str], tuple[str, str]] = {}
        # (user, call_id) -> (channel, message) of the delivery whose "Approve and allow
        # similar…" that user clicked: the grant form (ephemeral) is checked against it again.
        self.granting: dict[tuple[str, str], tuple[str, str]] = {}
        self.answers = DiscordAnswers(self)

    # -- REST --------------------------------------------------------------------------------

    async def _api(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.settings.discord_bot_token
        if not token:
            raise RuntimeError("no Discord bot token: set FUNCTIONLAYER_SERVER_DISCORD_BOT_TOKEN")
        headers = {
            "Authorization": f"Bot {token}",
            "User-Agent": "DiscordBot (https://github.com/functionlayer, 0.4.0)",
        }
        base = self.settings.discord_api_base.rstrip("/")
        return await call_json(method, base, path, body, headers, DiscordApiError)

    # -- the Channel protocol ---------------------------------------------------------------

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        discord = target.discord
        assert discord is not None
        kind = kind_of(request)
        grouped = isinstance(request, FunctionCall) and await joinable(self.service, request)
        if grouped and await self._join_group(request, discord):  # type: ignore[arg-type]
            return
        if needs_digest(request):
            await self.service.store.remember(
                REF_KEY + digest(kind, request.call_id), {"kind": kind, "call_id": request.call_id}
            )
        if discord.channel_id:
            channel_id = discord.channel_id.strip()
        elif discord.user_id:
            dm = await self._api(
                "POST", "/users/@me/channels", {"recipient_id": discord.user_id.strip()}
            )
            channel_id = required_id(dm, DiscordApiError, "POST /users/@me/channels", "channel")
        else:
            raise ValueError("a Discord target needs a channel_id or a user_id")
        body = await self._request_message(request, discord.context)
        message = await self._api("POST", f"/channels/{_segment(channel_id)}/messages", body)
        message_id = required_id(
            message, DiscordApiError, "POST /channels/{id}/messages", "message"
        )
        await self.deliveries.save_delivery(
            request.call_id,
            VIA,
            {
                "target": target_key(discord),
                "channel": channel_id,
                "message": message_id,
                **({"group": True} if grouped else {}),
            },
            kind=kind,
        )

    async def grant_offered(self, request: ChannelRequest) -> bool:
        return await grants.grant_offered(self, request)

    async def _request_message(
        self, request: ChannelRequest, context: str | None
    ) -> dict[str, Any]:
        offer = await self.offer(request)
        return request_message(request, context=context, base_url=self.settings.base_url, **offer)

    # -- review groups: one message per group and target (see _discord_groups) --------------

    async def _join_group(self, call: FunctionCall, discord: DiscordContactChannel) -> bool:
        """Deliver ``call`` into its group's message at this target, if there is one."""
        found = await shared.open_group_message(
            self.service,
            self.deliveries,
            call,
            via=VIA,
            keys=KEYS,
            target=target_key(discord),
            max_rows=MAX_ROWS,
        )
        if found is None:
            return False
        (channel, message), rows = found
        body = group_message(rows, context=discord.context)
        if body is None:
            return False
        path = f"/channels/{_segment(channel)}/messages/{_segment(message)}"
        await self._api("PATCH", path, body)
        await self.deliveries.save_delivery(
            call.call_id,
            VIA,
            {"target": target_key(discord), "channel": channel, "message": message, "group": True},
            kind=FUNCTION_CALL,
        )
        return True

    async def group_body(
        self, request: ChannelRequest, delivery: dict[str, Any], context: str | None
    ) -> dict[str, Any] | None:
        """The group message of ``delivery`` rebuilt, if it is one holding several calls."""
        if not delivery.get("group") or not isinstance(request, FunctionCall):
            return None
        place = (str(delivery.get("channel")), str(delivery.get("message")))
        rows = await shared.message_rows(
            self.service, self.deliveries, request, via=VIA, keys=KEYS, place=place
        )
        return group_message(rows, context=context) if len(rows) >= 2 else None

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """Show who decided what in every delivered message, without buttons (except the one
        an interaction response is already rewriting)."""
        skip = self.inline.pop((kind_of(request), request.call_id), None)
        await self.rewrite(request, deliveries, decided=True, skip=skip)

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if self.verify_key is None:
            return _unauthorized(
                "Discord interactions are disabled: no application public key is configured"
            )
        signature = request.headers.get("x-signature-ed25519", "")
        timestamp = request.headers.get("x-signature-timestamp", "")
        if not signature or not timestamp:
            return _unauthorized("unsigned Discord interaction")
        from nacl.exceptions import BadSignatureError

        try:
            self.verify_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        except (BadSignatureError, ValueError, TypeError):
            return _unauthorized("invalid Discord signature")
        try:
            signed_at = float(timestamp)
        except ValueError:
            return _unauthorized("invalid Discord signature timestamp")
        if not abs(time.time() - signed_at) <= MAX_AGE_SECONDS:
            return _unauthorized("stale Discord interaction")
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse(
                {"detail": f"malformed Discord payload: {exc}", "code": "bad_request"},
                status_code=400,
            )
        if payload.get("type") == PING:
            return JSONResponse({"type": PONG})
        interaction_id = str(payload.get("id") or "")
        if not interaction_id:
            return JSONResponse(
                {"detail": "Discord interaction without an id", "code": "bad_request"},
                status_code=400,
            )
        if not await self.answers.first_time_seen(interaction_id):
            await self.answers.audit_replay(payload, interaction_id)
            return _unauthorized("replayed Discord interaction")
        return JSONResponse(await self.handle_payload(payload))

    # -- interactions ------------------------------------------------------------------------

    async def handle_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Act on a verified, first-seen interaction (in ``_discord_answers``)."""
        return await self.answers.handle_payload(payload)

    async def rewrite(
        self,
        request: ChannelRequest,
        deliveries: list[dict[str, Any]],
        *,
        decided: bool,
        skip: str | None = None,
    ) -> None:
        async def build(delivery: dict[str, Any]) -> dict[str, Any] | None:
            if skip is not None and delivery.get("message") == skip:
                return None
            target = discord_target(request, str(delivery.get("target")))
            context = target.context if target else None
            return await self.group_body(request, delivery, context) or (
                decided_message(request, context=context)
                if decided
                else await self._request_message(request, context)
            )

        async def send(delivery: dict[str, Any], body: dict[str, Any]) -> None:
            path = (
                f"/channels/{_segment(str(delivery.get('channel')))}"
                f"/messages/{_segment(str(delivery.get('message')))}"
            )
            await self._api("PATCH", path, body)

        errors = (DiscordApiError, httpx.HTTPError, ValueError, RuntimeError)
        await rewrite_each(deliveries, build, send, errors)
