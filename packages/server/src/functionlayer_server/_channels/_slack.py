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

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from functionlayer.models import (
    ContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    SlackContactChannel,
)

from functionlayer_server._channels import _slack_groups as _groups
from functionlayer_server._channels._base import ChannelRequest, DeliveryStore, find_delivery
from functionlayer_server._channels._dispatch import (
    delivery_tiers,
    escalation_targets,
    request_kind,
)
from functionlayer_server._channels._slack_blocks import (
    ACTION_APPROVE,
    ACTION_APPROVE_CONFIRM,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
    INPUT_ACTION,
    INPUT_BLOCK,
    VIEW_REJECT,
    VIEW_REPLY,
    arguments_fit,
    confirm_blocks,
    decided_blocks,
    escape,
    outcome_text,
    reject_modal,
    reply_modal,
    request_blocks,
)
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
    ServerError,
)
from functionlayer_server._extras import require_extra
from functionlayer_server._policy import Identity, OperatorPolicy
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._settings import Settings

# slack_sdk (and the aiohttp its async client needs) come with the [slack] extra and are imported
# only once Slack is configured: a server without Slack starts without them.
if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["INTERACTIONS_PATH", "SlackChannel", "create_channel"]

log = logging.getLogger("functionlayer_server.channels.slack")

INTERACTIONS_PATH = "/slack/interactions"
VIA = "slack"


class _Refused(Exception):
    """An answer that must not decide anything; the message is shown to the clicker."""


class _NeedsConfirmation(Exception):
    """Approve on an irreversible function: nothing was decided; the clicker is asked to
    confirm with a second, deliberate click."""


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> SlackChannel | None:
    """Slack is on when the server has a bot token or Socket Mode is configured. (A request may
    still carry its own ``bot_token``; without a server token it is delivered with that.)"""
    if not (settings.slack_bot_token or settings.slack_socket_mode_app_token):
        return None
    require_extra("slack", "slack_sdk.web.async_client")  # or name the extra to install
    return SlackChannel(service, settings, deliveries)


class SlackChannel:
    name = VIA

    def __init__(
        self, service: ApprovalService, settings: Settings, deliveries: DeliveryStore
    ) -> None:
        self.service = service
        self.settings = settings
        self.deliveries = deliveries
        from slack_sdk.signature import SignatureVerifier

        self.verifier = (
            SignatureVerifier(settings.slack_signing_secret)
            if settings.slack_signing_secret
            else None
        )
        self._socket: Any = None

    # -- the Channel protocol ---------------------------------------------------------------

    def handles(self, target: ContactChannel) -> bool:
        return target.slack is not None

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
            progress=_progress(request),
            irreversible=await self._irreversible(request),
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
        target = _target(call, str(delivery.get("target")), self.service.rules)
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

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """Replace each delivered message with who decided what, without buttons."""
        await self._rewrite(request, deliveries, decided=True)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post(INTERACTIONS_PATH, include_in_schema=False)
        async def interactions(request: Request) -> Response:
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

        return router

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

    # -- interactions ------------------------------------------------------------------------

    async def handle_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Act on a verified interaction; the return value is the HTTP/Socket Mode answer."""
        kind = payload.get("type")
        try:
            if kind == "block_actions":
                await self._block_actions(payload)
                return None
            if kind == "view_submission":
                return await self._view_submission(payload)
        except Exception:
            log.exception("Slack interaction failed")
            return None
        return None  # other interaction types (view_closed, shortcuts) need nothing

    async def _block_actions(self, payload: dict[str, Any]) -> None:
        user = str((payload.get("user") or {}).get("id") or "")
        container = payload.get("container") or {}
        channel_id = str(
            container.get("channel_id") or (payload.get("channel") or {}).get("id") or ""
        )
        message_ts = str(
            container.get("message_ts") or (payload.get("message") or {}).get("ts") or ""
        )
        for action in payload.get("actions") or []:
            action_id = str(action.get("action_id") or "")
            if not action_id.startswith("fl_") or action_id == "fl_open":
                continue
            try:
                value = json.loads(action.get("value") or "{}")
                call_id = str(value["call_id"])
                request = await self._load(str(value.get("kind")), call_id)
                delivered_ts = message_ts
                if action_id == ACTION_APPROVE_CONFIRM:
                    # Clicked on the confirmation shown only to this person: it names the
                    # request's message, which must be a delivery in this same channel (and
                    # the person allowed there), as for any other button.
                    if str(value.get("channel")) != channel_id:
                        raise _Refused("This confirmation does not belong to this channel.")
                    delivered_ts = str(value["ts"])
                target = await self._authorize(request, user, channel_id, delivered_ts)
                await self._act(
                    payload, request, target, action_id, value, user, channel_id, delivered_ts
                )
            except _Refused as refused:
                await self._ephemeral(channel_id, user, str(refused), None)
            except (ValueError, KeyError, TypeError):
                await self._ephemeral(
                    channel_id, user, "This button is not a FunctionLayer request.", None
                )

    async def _act(
        self,
        payload: dict[str, Any],
        request: ChannelRequest,
        target: SlackContactChannel,
        action_id: str,
        value: dict[str, Any],
        user: str,
        channel_id: str,
        message_ts: str,
    ) -> None:
        token = target.bot_token
        metadata = {
            "kind": request_kind(request),
            "call_id": request.call_id,
            "channel": channel_id,
            "ts": message_ts,
        }
        if request.completed:
            raise _Refused(_already(request))
        if isinstance(request, FunctionCall):
            if action_id in (ACTION_APPROVE, ACTION_APPROVE_CONFIRM):
                if not arguments_fit(request):
                    raise _Refused(
                        "This message cannot show every argument, so it cannot approve the "
                        "call: open it in the inbox to decide."
                    )
                confirmed = action_id == ACTION_APPROVE_CONFIRM
                try:
                    await self._decide(
                        request,
                        FunctionCallStatus(approved=True, confirmed_irreversible=confirmed or None),
                        user,
                        channel_id,
                        token,
                    )
                except _NeedsConfirmation:
                    await self._ephemeral(
                        channel_id,
                        user,
                        f"{request.spec.fn} cannot be undone: confirm to approve it.",
                        token,
                        blocks=confirm_blocks(request, channel_id, message_ts),
                    )
            elif action_id == ACTION_REJECT:
                await self.client(token).views_open(
                    trigger_id=payload.get("trigger_id"), view=reject_modal(request, metadata)
                )
            elif action_id.startswith(ACTION_REJECT_OPTION + ":"):
                await self._decide(
                    request,
                    FunctionCallStatus(approved=False, reject_option_name=str(value["option"])),
                    user,
                    channel_id,
                    token,
                )
        else:
            if action_id == ACTION_REPLY:
                await self.client(token).views_open(
                    trigger_id=payload.get("trigger_id"), view=reply_modal(request, metadata)
                )
            elif action_id.startswith(ACTION_RESPOND_OPTION + ":"):
                try:
                    await self.service.respond_human_contact(
                        request.call_id,
                        response=None,
                        response_option_name=str(value["option"]),
                        responder=f"slack:{user}",
                        via=VIA,
                    )
                except (AlreadyDecidedError, InvalidDecisionError, ForbiddenError) as exc:
                    raise _Refused(exc.message) from exc

    async def _decide(
        self,
        call: FunctionCall,
        decision: FunctionCallStatus,
        user: str,
        channel_id: str,
        token: str | None,
    ) -> FunctionCall:
        try:
            result = await self.service.respond_function_call(
                call.call_id, decision, responder=f"slack:{user}", via=VIA
            )
        except AlreadyDecidedError as exc:
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:
            raise _Refused("You are not allowed to answer this request.") from exc
        except ConfirmationRequiredError as exc:
            raise _NeedsConfirmation(exc.message) from exc
        except InvalidDecisionError as exc:
            raise _Refused(exc.message) from exc
        if not result.completed:  # quorum: recorded, more approvals needed
            await self._ephemeral(
                channel_id, user, f"Your approval is recorded. {_progress(result)}", token
            )
            await self._rewrite(result, await self._deliveries(result), decided=False)
        return result

    async def _view_submission(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        view = payload.get("view") or {}
        callback = view.get("callback_id")
        if callback not in (VIEW_REJECT, VIEW_REPLY):
            return None
        user = str((payload.get("user") or {}).get("id") or "")
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            text = str(
                view["state"]["values"][INPUT_BLOCK][INPUT_ACTION].get("value") or ""
            ).strip()
        except (ValueError, KeyError, TypeError, AttributeError):
            return _input_error("This form is not a FunctionLayer request.")
        if not text:
            return _input_error("Please write something: it is what the agent gets back.")
        try:
            request = await self._load(str(metadata.get("kind")), str(metadata.get("call_id")))
            await self._authorize(
                request, user, str(metadata.get("channel")), str(metadata.get("ts"))
            )
            if callback == VIEW_REJECT and isinstance(request, FunctionCall):
                await self.service.respond_function_call(
                    request.call_id,
                    FunctionCallStatus(approved=False, comment=text),
                    responder=f"slack:{user}",
                    via=VIA,
                )
            elif callback == VIEW_REPLY and isinstance(request, HumanContact):
                await self.service.respond_human_contact(
                    request.call_id, response=text, responder=f"slack:{user}", via=VIA
                )
            else:
                return _input_error("This form does not match the request.")
        except _Refused as refused:
            return _input_error(str(refused))
        except AlreadyDecidedError as exc:
            return _input_error(f"Already decided: {exc.message}")
        except ServerError as exc:
            return _input_error(exc.message)
        return None  # closes the modal

    # -- helpers -----------------------------------------------------------------------------

    async def _load(self, kind: str, call_id: str) -> ChannelRequest:
        try:
            if kind == FUNCTION_CALL:
                return await self.service.get_function_call(call_id)
            if kind == "human_contact":
                return await self.service.get_human_contact(call_id)
        except NotFoundError as exc:
            raise _Refused("This request no longer exists on the FunctionLayer server.") from exc
        raise _Refused("This button is not a FunctionLayer request.")

    async def _deliveries(self, request: ChannelRequest) -> list[dict[str, Any]]:
        return await self.deliveries.load_deliveries(
            request.call_id, channel=VIA, kind=request_kind(request)
        )

    async def _authorize(
        self, request: ChannelRequest, user: str, channel_id: str, message_ts: str
    ) -> SlackContactChannel:
        """The target this message was delivered to, if ``user`` may answer there; else the
        refusal is audited and raised."""
        delivery = await find_delivery(
            lambda: self._deliveries(request),
            lambda d: d.get("channel") == channel_id and d.get("ts") == message_ts,
        )
        target = (
            None
            if delivery is None
            else _target(request, str(delivery.get("target")), self.service.rules)
        )
        reason: str | None = None
        if not user:
            reason = "no Slack user in the interaction"
        elif target is None:
            reason = "the message is not a delivery of this request"
        if reason is None and target is not None:
            allowed = target.allowed_responder_ids
            try:
                # Who may decide is the policy's call (the directory, the operator's rules,
                # the request's responders, and this target's allowed_responder_ids).
                await self.service.authorize(
                    request_kind(request),
                    request.call_id,
                    Identity("slack", user),
                    via=VIA,
                    via_identities=None
                    if allowed is None
                    else [Identity("slack", rid) for rid in allowed],
                )
            except ForbiddenError as exc:
                raise _Refused("You are not allowed to answer this request.") from exc
            return target
        await self.service.record_audit(
            request_kind(request),
            request.call_id,
            who=user or "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason, "channel": channel_id, "ts": message_ts},
        )
        raise _Refused("You are not allowed to answer this request.")

    async def _irreversible(self, request: ChannelRequest) -> bool:
        """Whether Approve takes the second click (the agent's mark or the operator's)."""
        if not isinstance(request, FunctionCall):
            return False
        if request.spec.irreversible:
            return True
        project = await self.service.get_project(FUNCTION_CALL, request.call_id)
        return project is not None and await self.service.irreversible(request, project)

    async def _ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        token: str | None,
        *,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        from slack_sdk.errors import SlackApiError

        if not channel or not user:
            return
        try:
            await self.client(token).chat_postEphemeral(
                channel=channel, user=user, text=escape(text), blocks=blocks
            )
        except (SlackApiError, RuntimeError, OSError) as exc:
            log.warning("Slack ephemeral message failed: %s", exc)

    async def _rewrite(
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
            target = _target(request, str(delivery.get("target")), self.service.rules)
            context = target.context_about_channel_or_user if target else None
            blocks = (
                decided_blocks(request, context=context)
                if decided
                else request_blocks(
                    request,
                    context=context,
                    base_url=self.settings.base_url,
                    progress=_progress(request),
                    irreversible=await self._irreversible(request),
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


def _target(
    request: ChannelRequest, channel_or_user_id: str, rules: OperatorPolicy
) -> SlackContactChannel | None:
    """The target a message was delivered to: one of the request's, or one of the operator's
    escalation targets (a reminder's escalation)."""
    for tier in [*delivery_tiers(request), escalation_targets(rules)]:
        for target in tier:
            if target.slack is not None and target.slack.channel_or_user_id == channel_or_user_id:
                return target.slack
    return None


def _fallback(request: ChannelRequest) -> str:
    if isinstance(request, FunctionCall):
        return f"Approval requested: {escape(request.spec.fn)}"
    return f"Question: {escape(request.spec.subject or 'a human contact request')}"


def _progress(request: ChannelRequest) -> str | None:
    if not isinstance(request, FunctionCall) or request.spec.policy is None:
        return None
    required = request.spec.policy.approvals_required
    if required <= 1:
        return None
    have = len(request.status.approvals or []) if request.status else 0
    return f"{have} of {required} approvals so far."


def _already(request: ChannelRequest) -> str:
    return "Already decided: " + outcome_text(request).replace("*", "")


def _input_error(message: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {INPUT_BLOCK: message[:1000]}}
