"""Slack: post requests as Block Kit messages and take the answers from their buttons.

Answers arrive on ``POST /slack/interactions`` (signed by Slack: ``v0=`` HMAC-SHA256 of
``v0:{timestamp}:{body}`` with the signing secret, at most 5 minutes old) or, when
``slack_socket_mode_app_token`` is set, over Socket Mode; both go through
:meth:`SlackChannel.handle_payload`. Only responders allowed by the target's
``allowed_responder_ids`` (and the policy's ``responders``) can decide; refusals are audited.
Decisions go through the service, so a second click can never decide twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from functionlayer.models import (
    ContactChannel,
    FunctionCall,
    SlackContactChannel,
)

from functionlayer_server._channels import _slack_groups as _groups
from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
)
from functionlayer_server._channels._core import MessageChannel
from functionlayer_server._channels._grant_offer import grant_offered
from functionlayer_server._channels._planning import request_kind
from functionlayer_server._channels._slack_answers import VIA, SlackAnswers, slack_target
from functionlayer_server._channels._slack_blocks import (
    decided_blocks,
    escape,
    outcome_text,
    request_blocks,
)
from functionlayer_server._extras import require_extra
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._settings import Settings

# slack_sdk (and the aiohttp its async client needs) come with the [slack] extra and are imported
# only once Slack is configured: a server without Slack starts without them.
if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["INTERACTIONS_PATH", "SlackChannel", "create_channel"]

log = logging.getLogger("functionlayer_server.channels.slack")

INTERACTIONS_PATH = "/slack/interactions"


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> SlackChannel | None:
    """Slack is on when the server has a bot token or Socket Mode is configured. (A request may
    still carry its own ``bot_token``; without a server token it is delivered with that.)"""
    if not (settings.slack_bot_token or settings.slack_socket_mode_app_token):
        return None
    require_extra("slack", "slack_sdk.web.async_client")  # or name the extra to install
    return SlackChannel(service, settings, deliveries)


class SlackChannel(MessageChannel):
    name = VIA
    inbound_path = INTERACTIONS_PATH

    def prepare(self) -> None:
        from slack_sdk.signature import SignatureVerifier

        secret = self.settings.slack_signing_secret
        self.verifier = SignatureVerifier(secret) if secret else None
        self._socket: Any = None
        self.answers = SlackAnswers(self)

    # -- the Channel protocol ---------------------------------------------------------------

    def client(self, token: str | None = None) -> AsyncWebClient:
        from slack_sdk.web.async_client import AsyncWebClient

        token = token or self.settings.slack_bot_token
        if not token:
            raise RuntimeError(
                "no Slack bot token: set FUNCTIONLAYER_SERVER_SLACK_BOT_TOKEN or the channel's bot_token"
            )
        return AsyncWebClient(token=token, base_url=self.settings.slack_api_url, timeout=15)

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        slack = target.slack
        assert slack is not None
        grouped = isinstance(request, FunctionCall) and bool(request.spec.group_id)
        if grouped and await self._join_group(request, slack):  # type: ignore[arg-type]
            return
        blocks = request_blocks(
            request,
            context=slack.context_about_channel_or_user,
            base_url=self.settings.base_url,
            **await self.offer(request),
        )
        response = await self.client(slack.bot_token).chat_postMessage(
            channel=slack.channel_or_user_id,
            text=_fallback(request),
            blocks=blocks,
            thread_ts=slack.thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        await self.deliveries.save_delivery(
            request.call_id,
            VIA,
            {
                "target": slack.channel_or_user_id,
                "channel": response.get("channel") or slack.channel_or_user_id,
                "ts": response.get("ts"),
                **({"group": True} if grouped else {}),
            },
            kind=request_kind(request),
        )

    # -- review groups: one message per group and target (see _slack_groups) ----------------

    async def _join_group(self, call: FunctionCall, slack: SlackContactChannel) -> bool:
        """Deliver ``call`` into its group's message at this target, if there is one."""
        found = await _groups.open_group_message(
            self.service, self.deliveries, call, slack.channel_or_user_id
        )
        if found is None:
            return False
        channel, ts, rows = found
        blocks = _groups.group_blocks(
            rows, context=slack.context_about_channel_or_user, base_url=self.settings.base_url
        )
        if blocks is None:
            return False
        await self.client(slack.bot_token).chat_update(
            channel=channel, ts=ts, text=_groups.group_text(rows), blocks=blocks
        )
        await self.deliveries.save_delivery(
            call.call_id,
            VIA,
            {"target": slack.channel_or_user_id, "channel": channel, "ts": ts, "group": True},
            kind=FUNCTION_CALL,
        )
        return True

    async def _rewrite_group(self, call: FunctionCall, delivery: dict[str, Any]) -> bool:
        """Rebuild a group message after one of its calls changed; False if it holds only
        this call (then it is rewritten as a single request)."""
        channel, ts = str(delivery.get("channel")), str(delivery.get("ts"))
        rows = await _groups.message_rows(self.service, self.deliveries, call, channel, ts)
        if len(rows) < 2:
            return False
        target = slack_target(call, str(delivery.get("target")), self.service.rules)
        blocks = _groups.group_blocks(
            rows,
            context=target.context_about_channel_or_user if target else None,
            base_url=self.settings.base_url,
        )
        if blocks is None:
            return False
        await self.client(target.bot_token if target else None).chat_update(
            channel=channel, ts=ts, text=_groups.group_text(rows), blocks=blocks
        )
        return True

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if self.verifier is None:
            return JSONResponse(
                {
                    "detail": "Slack interactions are disabled: no signing secret is configured",
                    "code": "unauthorized",
                },
                status_code=401,
            )
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return JSONResponse(
                {
                    "detail": "invalid or stale Slack signature",
                    "code": "unauthorized",
                },
                status_code=401,
            )
        try:
            raw = parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0]
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
        except (KeyError, IndexError, ValueError, UnicodeDecodeError) as exc:
            return JSONResponse(
                {"detail": f"malformed Slack payload: {exc}", "code": "bad_request"},
                status_code=400,
            )
        answer = await self.handle_payload(payload)
        return JSONResponse(answer) if answer else Response(status_code=200)

    # -- Socket Mode -------------------------------------------------------------------------

    async def start(self) -> None:
        app_token = self.settings.slack_socket_mode_app_token
        if not app_token:
            return
        from slack_sdk.socket_mode.aiohttp import SocketModeClient
        from slack_sdk.socket_mode.request import SocketModeRequest
        from slack_sdk.socket_mode.response import SocketModeResponse
        from slack_sdk.web.async_client import AsyncWebClient

        socket = SocketModeClient(
            app_token=app_token,
            web_client=AsyncWebClient(base_url=self.settings.slack_api_url),
        )

        async def on_request(client: Any, req: SocketModeRequest) -> None:
            if req.type != "interactive":
                await client.send_socket_mode_response(
                    SocketModeResponse(envelope_id=req.envelope_id)
                )
                return
            # Socket Mode messages come over an authenticated connection: no signature.
            answer = await self.handle_payload(req.payload)
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id, payload=answer or None)
            )

        socket.socket_mode_request_listeners.append(on_request)
        connect: Callable[[], Awaitable[None]] = socket.connect  # slack_sdk leaves it untyped
        await connect()
        self._socket = socket

    async def stop(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()

    # -- interactions (in _slack_answers) ----------------------------------------------------

    async def handle_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Act on a verified interaction; the return value is the HTTP/Socket Mode answer."""
        return await self.answers.handle_payload(payload)

    # -- helpers -----------------------------------------------------------------------------

    async def grant_offered(self, request: ChannelRequest) -> bool:
        """Whether the message offers "Approve and allow similar…" (``_grant_offer``)."""
        if not isinstance(request, FunctionCall):
            return False
        project = await self.service.get_project(FUNCTION_CALL, request.call_id)
        return await grant_offered(self.service, request, project)

    async def rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None:
        from slack_sdk.errors import SlackApiError

        errors: list[str] = []
        for delivery in deliveries:
            if delivery.get("group") and isinstance(request, FunctionCall):
                try:
                    if await self._rewrite_group(request, delivery):
                        continue
                except (SlackApiError, RuntimeError, OSError) as exc:
                    errors.append(str(exc))
                    continue
            target = slack_target(request, str(delivery.get("target")), self.service.rules)
            context = target.context_about_channel_or_user if target else None
            blocks = (
                decided_blocks(request, context=context)
                if decided
                else request_blocks(
                    request,
                    context=context,
                    base_url=self.settings.base_url,
                    **await self.offer(request),
                )
            )
            try:
                await self.client(target.bot_token if target else None).chat_update(
                    channel=str(delivery.get("channel")),
                    ts=str(delivery.get("ts")),
                    text=outcome_text(request) if decided else _fallback(request),
                    blocks=blocks,
                )
            except (SlackApiError, RuntimeError, OSError) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))


def _fallback(request: ChannelRequest) -> str:
    if isinstance(request, FunctionCall):
        return f"Approval requested: {escape(request.spec.fn)}"
    return f"Question: {escape(request.spec.subject or 'a human contact request')}"
