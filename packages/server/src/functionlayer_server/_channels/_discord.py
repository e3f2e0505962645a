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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from functionlayer.models import (
    ContactChannel,
    DiscordContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
)

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
    find_delivery,
    first_time,
)
from functionlayer_server._channels._discord_messages import (
    ACTION_APPROVE,
    ACTION_CONFIRM,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
    INPUT_ID,
    ButtonRef,
    arguments_fit,
    confirm_message,
    decided_message,
    digest,
    ephemeral,
    kind_of,
    modal,
    needs_digest,
    outcome_text,
    parse_custom_id,
    request_message,
)
from functionlayer_server._channels._dispatch import delivery_tiers
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
)
from functionlayer_server._extras import require_extra
from functionlayer_server._policy import Identity
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["INTERACTIONS_PATH", "MAX_AGE_SECONDS", "DiscordChannel", "create_channel"]

log = logging.getLogger("functionlayer_server.channels.discord")

INTERACTIONS_PATH = "/channels/discord/interactions"
VIA = "discord"
MAX_AGE_SECONDS = 300.0
"""Interactions signed longer ago than this (or this far in the future) are refused."""

_SEEN_KEY = "discord:interaction:"
_REF_KEY = "discord:ref:"

# Interaction types (Discord API).
PING = 1
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5
# Interaction callback types.
PONG = 1
UPDATE_MESSAGE = 7


class DiscordApiError(Exception):
    """Discord answered a REST call with an error status."""


class _Refused(Exception):
    """An answer that must not decide anything; the message is shown to the clicker only."""


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


def _segment(value: str) -> str:
    """One path segment of a REST URL (ids come from requests: never let them add segments)."""
    value = value.strip()
    if not value or value in (".", ".."):
        raise ValueError(f"not a Discord id: {value!r}")
    return quote(value, safe="")


def _target_key(target: DiscordContactChannel) -> str:
    return f"{target.channel_id or ''}/{target.user_id or ''}"


def _target(request: ChannelRequest, key: str) -> DiscordContactChannel | None:
    for tier in delivery_tiers(request):
        for target in tier:
            if target.discord is not None and _target_key(target.discord) == key:
                return target.discord
    return None


def _user_of(payload: dict[str, Any]) -> str:
    """The clicker: ``member.user`` in a server channel, ``user`` in a direct message."""
    member = payload.get("member")
    user = member.get("user") if isinstance(member, dict) else None
    if not isinstance(user, dict):
        user = payload.get("user")
    if not isinstance(user, dict):
        return ""
    return str(user.get("id") or "")


def _text_input(components: Any) -> str | None:
    """The value of our text input in a modal submission (rows, or label components)."""
    if isinstance(components, dict):
        if components.get("custom_id") == INPUT_ID and "value" in components:
            return str(components.get("value") or "")
        for key in ("components", "component"):
            found = _text_input(components.get(key))
            if found is not None:
                return found
        return None
    if isinstance(components, list):
        for item in components:
            found = _text_input(item)
            if found is not None:
                return found
    return None


def _progress(request: ChannelRequest) -> str | None:
    if not isinstance(request, FunctionCall) or request.spec.policy is None:
        return None
    required = request.spec.policy.approvals_required
    if required <= 1:
        return None
    have = len(request.status.approvals or []) if request.status else 0
    return f"{have} of {required} approvals so far."


class _NeedsConfirmation(Exception):
    """Approve on an irreversible function: nothing was decided; the clicker is asked to
    confirm with a second click."""


class DiscordChannel:
    name = VIA

    def __init__(
        self, service: ApprovalService, settings: Settings, deliveries: DeliveryStore
    ) -> None:
        self.service = service
        self.settings = settings
        self.deliveries = deliveries
        self.verify_key = _verify_key(settings.discord_public_key)
        # (kind, call_id) -> the message an UPDATE_MESSAGE response is rewriting right now, so
        # update() leaves it alone and PATCHes only the other deliveries.
        self._inline: dict[tuple[str, str], str] = {}
        # (user, call_id) -> (channel, message) of the delivery whose Approve that user clicked
        # on an irreversible function: the confirm button (on a message only they see) is
        # checked against that delivery again. Per process and bounded; a confirm this process
        # does not know fails closed ("click Approve again").
        self._confirming: dict[tuple[str, str], tuple[str, str]] = {}

    # -- REST --------------------------------------------------------------------------------

    async def _api(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.settings.discord_bot_token
        if not token:
            raise RuntimeError("no Discord bot token: set FUNCTIONLAYER_SERVER_DISCORD_BOT_TOKEN")
        base = self.settings.discord_api_base.rstrip("/")
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.request(
                method,
                base + path,
                json=body,
                headers={
                    "Authorization": f"Bot {token}",
                    "User-Agent": "DiscordBot (https://github.com/functionlayer, 0.4.0)",
                },
            )
        if response.status_code >= 400:
            raise DiscordApiError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}"
            )
        if not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}

    # -- the Channel protocol ---------------------------------------------------------------

    def handles(self, target: ContactChannel) -> bool:
        return target.discord is not None

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        discord = target.discord
        assert discord is not None
        kind = kind_of(request)
        if needs_digest(request):
            await self.service.store.remember(
                _REF_KEY + digest(kind, request.call_id), {"kind": kind, "call_id": request.call_id}
            )
        if discord.channel_id:
            channel_id = discord.channel_id.strip()
        elif discord.user_id:
            dm = await self._api(
                "POST", "/users/@me/channels", {"recipient_id": discord.user_id.strip()}
            )
            channel_id = str(dm.get("id") or "")
            if not channel_id:
                raise DiscordApiError("POST /users/@me/channels returned no channel id")
        else:
            raise ValueError("a Discord target needs a channel_id or a user_id")
        body = request_message(
            request,
            context=discord.context,
            base_url=self.settings.base_url,
            progress=_progress(request),
            irreversible=await self._irreversible(request),
        )
        message = await self._api("POST", f"/channels/{_segment(channel_id)}/messages", body)
        message_id = str(message.get("id") or "")
        if not message_id:
            raise DiscordApiError("POST /channels/{id}/messages returned no message id")
        await self.deliveries.save_delivery(
            request.call_id,
            VIA,
            {"target": _target_key(discord), "channel": channel_id, "message": message_id},
            kind=kind,
        )

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """Show who decided what in every delivered message, without buttons (except the one
        an interaction response is already rewriting)."""
        skip = self._inline.pop((kind_of(request), request.call_id), None)
        await self._rewrite(request, deliveries, decided=True, skip=skip)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post(INTERACTIONS_PATH, include_in_schema=False)
        async def interactions(request: Request) -> Response:
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
            if not await self._first_time(interaction_id):
                await self._audit_replay(payload, interaction_id)
                return _unauthorized("replayed Discord interaction")
            return JSONResponse(await self.handle_payload(payload))

        return router

    # -- interactions ------------------------------------------------------------------------

    async def _first_time(self, interaction_id: str) -> bool:
        """Claim the interaction id; False when it was seen before (first write wins)."""
        return await first_time(self.service.store, _SEEN_KEY + interaction_id[:200])

    async def _audit_replay(self, payload: dict[str, Any], interaction_id: str) -> None:
        data = payload.get("data")
        ref = parse_custom_id(str(data.get("custom_id") or "")) if isinstance(data, dict) else None
        if ref is None:
            log.warning("replayed Discord interaction %s refused", interaction_id[:200])
            return
        try:
            request = await self._load(ref)
        except _Refused:
            return
        await self.service.record_audit(
            kind_of(request),
            request.call_id,
            who=_user_of(payload) or "unknown",
            via=VIA,
            action="refused",
            details={"reason": "replayed Discord interaction", "interaction": interaction_id},
        )

    async def handle_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Act on a verified, first-seen interaction; the return value is the response."""
        kind = payload.get("type")
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        assert isinstance(data, dict)
        ref = parse_custom_id(str(data.get("custom_id") or ""))
        if kind not in (MESSAGE_COMPONENT, MODAL_SUBMIT) or ref is None:
            return ephemeral("This is not a FunctionLayer request.")
        if ref.modal != (kind == MODAL_SUBMIT):
            return ephemeral("This is not a FunctionLayer request.")
        user = _user_of(payload)
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        assert isinstance(message, dict)
        channel_id = str(payload.get("channel_id") or message.get("channel_id") or "")
        message_id = str(message.get("id") or "")
        try:
            request = await self._load(ref)
            if kind == MESSAGE_COMPONENT:
                return await self._click(request, ref, user, channel_id, message_id, data)
            text = (_text_input(data.get("components")) or "").strip()
            return await self._submit(request, ref, user, channel_id, message_id, text)
        except _Refused as refused:
            return ephemeral(str(refused))
        except Exception:
            log.exception("Discord interaction failed")
            return ephemeral("Something went wrong on the FunctionLayer server; nothing changed.")

    async def _click(
        self,
        request: ChannelRequest,
        ref: ButtonRef,
        user: str,
        channel_id: str,
        message_id: str,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        await self._check_open(request, user)
        if ref.action == ACTION_CONFIRM:
            remembered = self._confirming.pop((user, request.call_id), None)
            if remembered is None or remembered[0] != channel_id:
                raise _Refused("This confirmation expired: click Approve on the request again.")
            message_id = remembered[1]
        target = await self._authorize(request, user, channel_id, message_id)
        if isinstance(request, FunctionCall):
            if ref.action in (ACTION_APPROVE, ACTION_CONFIRM):
                if not arguments_fit(request):
                    raise _Refused(
                        "This message cannot show every argument, so it cannot approve the "
                        "call: open it in the inbox to decide."
                    )
                confirmed = ref.action == ACTION_CONFIRM
                try:
                    return await self._decide(
                        request,
                        FunctionCallStatus(approved=True, confirmed_irreversible=confirmed or None),
                        user,
                        target,
                        message_id,
                    )
                except _NeedsConfirmation:
                    if len(self._confirming) > 1000:
                        self._confirming.clear()
                    self._confirming[(user, request.call_id)] = (channel_id, message_id)
                    return confirm_message(request)
            if ref.action == ACTION_REJECT:
                return modal(request, str(data.get("custom_id")))
            if ref.action == ACTION_REJECT_OPTION and ref.option is not None:
                options = request.spec.reject_options or []
                if ref.option >= len(options):
                    raise _Refused("This option is not part of the request.")
                return await self._decide(
                    request,
                    FunctionCallStatus(approved=False, reject_option_name=options[ref.option].name),
                    user,
                    target,
                    message_id,
                )
        else:
            if ref.action == ACTION_REPLY:
                return modal(request, str(data.get("custom_id")))
            if ref.action == ACTION_RESPOND_OPTION and ref.option is not None:
                response_options = request.spec.response_options or []
                if ref.option >= len(response_options):
                    raise _Refused("This option is not part of the request.")
                return await self._answer(
                    request, None, response_options[ref.option].name, user, target, message_id
                )
        raise _Refused("This button does not match the request.")

    async def _submit(
        self,
        request: ChannelRequest,
        ref: ButtonRef,
        user: str,
        channel_id: str,
        message_id: str,
        text: str,
    ) -> dict[str, Any]:
        if not text:
            return ephemeral("Please write something: it is what the agent gets back.")
        await self._check_open(request, user)
        target = await self._authorize(request, user, channel_id, message_id)
        if isinstance(request, FunctionCall) and ref.action == ACTION_REJECT:
            return await self._decide(
                request,
                FunctionCallStatus(approved=False, comment=text),
                user,
                target,
                message_id,
            )
        if isinstance(request, HumanContact) and ref.action == ACTION_REPLY:
            return await self._answer(request, text, None, user, target, message_id)
        raise _Refused("This form does not match the request.")

    async def _check_open(self, request: ChannelRequest, user: str) -> None:
        if request.completed:
            await self._audit_refusal(request, user, "already decided")
            raise _Refused("Already decided: " + outcome_text(request).replace("**", ""))

    def _via_identities(self, target: DiscordContactChannel) -> list[Identity] | None:
        allowed = target.allowed_responder_ids
        return None if allowed is None else [Identity("discord", rid) for rid in allowed]

    async def _decide(
        self,
        call: FunctionCall,
        decision: FunctionCallStatus,
        user: str,
        target: DiscordContactChannel,
        message_id: str,
    ) -> dict[str, Any]:
        key = (FUNCTION_CALL, call.call_id)
        self._inline[key] = message_id
        try:
            result = await self.service.respond_function_call(
                call.call_id,
                decision,
                responder=f"discord:{user}",
                via=VIA,
                via_identities=self._via_identities(target),
            )
        except AlreadyDecidedError as exc:
            self._inline.pop(key, None)
            await self._audit_refusal(call, user, "already decided")
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:  # audited by the service
            self._inline.pop(key, None)
            raise _Refused("You are not allowed to answer this request.") from exc
        except ConfirmationRequiredError as exc:
            self._inline.pop(key, None)
            raise _NeedsConfirmation(exc.message) from exc
        except InvalidDecisionError as exc:
            self._inline.pop(key, None)
            raise _Refused(exc.message) from exc
        except BaseException:
            self._inline.pop(key, None)
            raise
        if not result.completed:  # quorum: recorded, more approvals needed
            self._inline.pop(key, None)
            others = [d for d in await self._deliveries(result) if d.get("message") != message_id]
            try:
                await self._rewrite(result, others, decided=False, skip=None)
            except (RuntimeError, DiscordApiError, httpx.HTTPError) as exc:
                log.warning("Discord: showing quorum progress failed: %s", exc)
            body = request_message(
                result,
                irreversible=await self._irreversible(result),
                context=target.context,
                base_url=self.settings.base_url,
                progress=f"Your approval is recorded. {_progress(result) or ''}".strip(),
            )
            return {"type": UPDATE_MESSAGE, "data": body}
        return {"type": UPDATE_MESSAGE, "data": decided_message(result, context=target.context)}

    async def _answer(
        self,
        contact: HumanContact,
        response: str | None,
        option: str | None,
        user: str,
        target: DiscordContactChannel,
        message_id: str,
    ) -> dict[str, Any]:
        key = (HUMAN_CONTACT, contact.call_id)
        self._inline[key] = message_id
        try:
            result = await self.service.respond_human_contact(
                contact.call_id,
                response=response,
                response_option_name=option,
                responder=f"discord:{user}",
                via=VIA,
                via_identities=self._via_identities(target),
            )
        except AlreadyDecidedError as exc:
            self._inline.pop(key, None)
            await self._audit_refusal(contact, user, "already decided")
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:
            self._inline.pop(key, None)
            raise _Refused("You are not allowed to answer this request.") from exc
        except InvalidDecisionError as exc:
            self._inline.pop(key, None)
            raise _Refused(exc.message) from exc
        except BaseException:
            self._inline.pop(key, None)
            raise
        return {"type": UPDATE_MESSAGE, "data": decided_message(result, context=target.context)}

    # -- helpers -----------------------------------------------------------------------------

    async def _irreversible(self, request: ChannelRequest) -> bool:
        """Whether Approve takes the second click (the agent's mark or the operator's)."""
        if not isinstance(request, FunctionCall):
            return False
        if request.spec.irreversible:
            return True
        project = await self.service.get_project(FUNCTION_CALL, request.call_id)
        return project is not None and await self.service.irreversible(request, project)

    async def _load(self, ref: ButtonRef) -> ChannelRequest:
        call_id = ref.call_id
        if call_id is None and ref.digest is not None:
            found = await self.service.store.recall(_REF_KEY + ref.digest)
            if found is not None and found.get("kind") == ref.kind:
                call_id = str(found.get("call_id"))
        if call_id is None:
            raise _Refused("This request no longer exists on the FunctionLayer server.")
        try:
            if ref.kind == FUNCTION_CALL:
                return await self.service.get_function_call(call_id)
            return await self.service.get_human_contact(call_id)
        except NotFoundError as exc:
            raise _Refused("This request no longer exists on the FunctionLayer server.") from exc

    async def _deliveries(self, request: ChannelRequest) -> list[dict[str, Any]]:
        return await self.deliveries.load_deliveries(
            request.call_id, channel=VIA, kind=kind_of(request)
        )

    async def _audit_refusal(self, request: ChannelRequest, user: str, reason: str) -> None:
        await self.service.record_audit(
            kind_of(request),
            request.call_id,
            who=f"discord:{user}" if user else "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason},
        )

    async def _authorize(
        self, request: ChannelRequest, user: str, channel_id: str, message_id: str
    ) -> DiscordContactChannel:
        """The target this message was delivered to, if ``user`` may answer there; else the
        refusal is audited and raised."""
        delivery = await find_delivery(
            lambda: self._deliveries(request),
            lambda d: d.get("channel") == channel_id and d.get("message") == message_id,
            wait=bool(message_id),
        )
        target = None if delivery is None else _target(request, str(delivery.get("target")))
        reason: str | None = None
        if not user:
            reason = "no Discord user in the interaction"
        elif target is None:
            reason = "the message is not a delivery of this request"
        if reason is None and target is not None:
            try:
                # Who may decide is the policy's call (the directory, the operator's rules,
                # the request's responders, and this target's allowed_responder_ids).
                await self.service.authorize(
                    kind_of(request),
                    request.call_id,
                    Identity("discord", user),
                    via=VIA,
                    via_identities=self._via_identities(target),
                )
            except ForbiddenError as exc:  # audited by the service
                raise _Refused("You are not allowed to answer this request.") from exc
            return target
        await self.service.record_audit(
            kind_of(request),
            request.call_id,
            who=f"discord:{user}" if user else "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason, "channel": channel_id, "message": message_id},
        )
        raise _Refused("You are not allowed to answer this request.")

    async def _rewrite(
        self,
        request: ChannelRequest,
        deliveries: list[dict[str, Any]],
        *,
        decided: bool,
        skip: str | None,
    ) -> None:
        errors: list[str] = []
        for delivery in deliveries:
            if skip is not None and delivery.get("message") == skip:
                continue
            target = _target(request, str(delivery.get("target")))
            context = target.context if target else None
            body = (
                decided_message(request, context=context)
                if decided
                else request_message(
                    request,
                    context=context,
                    base_url=self.settings.base_url,
                    progress=_progress(request),
                    irreversible=await self._irreversible(request),
                )
            )
            try:
                path = (
                    f"/channels/{_segment(str(delivery.get('channel')))}"
                    f"/messages/{_segment(str(delivery.get('message')))}"
                )
                await self._api("PATCH", path, body)
            except (DiscordApiError, httpx.HTTPError, ValueError, RuntimeError) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))
