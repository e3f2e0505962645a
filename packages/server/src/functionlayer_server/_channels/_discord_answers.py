"""Discord answers: button clicks and modal submissions on a delivered message, turned into
decisions through the service by persons the policy lets decide there (signature, freshness
and replays are checked by ``_discord``'s route first). Refusals are shown only to the clicker
(an ephemeral message) and audited; the service decides each request once.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx
from functionlayer.models import (
    DiscordContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
)

from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
    find_delivery,
    first_time,
    needs_confirmation,
    quorum_progress,
)
from functionlayer_server._channels._discord_messages import (
    ACTION_APPROVE,
    ACTION_CONFIRM,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
    ButtonRef,
    arguments_fit,
    confirm_message,
    decided_message,
    ephemeral,
    kind_of,
    modal,
    outcome_text,
    parse_custom_id,
    request_message,
)
from functionlayer_server._channels._discord_parts import (
    DiscordApiError,
    discord_target,
    text_input,
    user_of,
)
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
)
from functionlayer_server._policy import Identity
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["VIA", "DiscordAnswers"]

log = logging.getLogger("functionlayer_server.channels.discord")

VIA = "discord"
_SEEN_KEY = "discord:interaction:"
_REF_KEY = "discord:ref:"
# Interaction types (Discord API).
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5
# Interaction callback types.
UPDATE_MESSAGE = 7


class _Refused(Exception):
    """An answer that must not decide anything; the message is shown to the clicker only."""


class _NeedsConfirmation(Exception):
    """Approve on an irreversible function: nothing was decided; the clicker is asked to
    confirm with a second, deliberate click."""


class DiscordPoster(Protocol):
    """What answering needs from the channel: its records and message rewrites."""

    service: ApprovalService
    settings: Settings
    deliveries: DeliveryStore
    inline: dict[tuple[str, str], str]
    confirming: dict[tuple[str, str], tuple[str, str]]

    async def rewrite(
        self,
        request: ChannelRequest,
        deliveries: list[dict[str, Any]],
        *,
        decided: bool,
        skip: str | None,
    ) -> None: ...

    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]: ...


class DiscordAnswers:
    def __init__(self, channel: DiscordPoster) -> None:
        self.channel = channel

    async def first_time_seen(self, interaction_id: str) -> bool:
        """Claim the interaction id; False when it was seen before (first write wins)."""
        return await first_time(self.channel.service.store, _SEEN_KEY + interaction_id[:200])

    async def audit_replay(self, payload: dict[str, Any], interaction_id: str) -> None:
        data = payload.get("data")
        ref = parse_custom_id(str(data.get("custom_id") or "")) if isinstance(data, dict) else None
        if ref is None:
            log.warning("replayed Discord interaction %s refused", interaction_id[:200])
            return
        try:
            request = await self._load(ref)
        except _Refused:
            return
        await self.channel.service.record_audit(
            kind_of(request),
            request.call_id,
            who=user_of(payload) or "unknown",
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
        user = user_of(payload)
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        assert isinstance(message, dict)
        channel_id = str(payload.get("channel_id") or message.get("channel_id") or "")
        message_id = str(message.get("id") or "")
        try:
            request = await self._load(ref)
            if kind == MESSAGE_COMPONENT:
                return await self._click(request, ref, user, channel_id, message_id, data)
            text = (text_input(data.get("components")) or "").strip()
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
            remembered = self.channel.confirming.pop((user, request.call_id), None)
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
                    if len(self.channel.confirming) > 1000:
                        self.channel.confirming.clear()
                    self.channel.confirming[(user, request.call_id)] = (channel_id, message_id)
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
        self.channel.inline[key] = message_id
        try:
            result = await self.channel.service.respond_function_call(
                call.call_id,
                decision,
                responder=f"discord:{user}",
                via=VIA,
                via_identities=self._via_identities(target),
            )
        except AlreadyDecidedError as exc:
            self.channel.inline.pop(key, None)
            await self._audit_refusal(call, user, "already decided")
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:  # audited by the service
            self.channel.inline.pop(key, None)
            raise _Refused("You are not allowed to answer this request.") from exc
        except ConfirmationRequiredError as exc:
            self.channel.inline.pop(key, None)
            raise _NeedsConfirmation(exc.message) from exc
        except InvalidDecisionError as exc:
            self.channel.inline.pop(key, None)
            raise _Refused(exc.message) from exc
        except BaseException:
            self.channel.inline.pop(key, None)
            raise
        if not result.completed:  # quorum: recorded, more approvals needed
            self.channel.inline.pop(key, None)
            others = [
                d
                for d in await self.channel.deliveries_of(result)
                if d.get("message") != message_id
            ]
            try:
                await self.channel.rewrite(result, others, decided=False, skip=None)
            except (RuntimeError, DiscordApiError, httpx.HTTPError) as exc:
                log.warning("Discord: showing quorum progress failed: %s", exc)
            body = request_message(
                result,
                irreversible=await needs_confirmation(self.channel.service, result),
                context=target.context,
                base_url=self.channel.settings.base_url,
                progress=f"Your approval is recorded. {quorum_progress(result) or ''}".strip(),
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
        self.channel.inline[key] = message_id
        try:
            result = await self.channel.service.respond_human_contact(
                contact.call_id,
                response=response,
                response_option_name=option,
                responder=f"discord:{user}",
                via=VIA,
                via_identities=self._via_identities(target),
            )
        except AlreadyDecidedError as exc:
            self.channel.inline.pop(key, None)
            await self._audit_refusal(contact, user, "already decided")
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:
            self.channel.inline.pop(key, None)
            raise _Refused("You are not allowed to answer this request.") from exc
        except InvalidDecisionError as exc:
            self.channel.inline.pop(key, None)
            raise _Refused(exc.message) from exc
        except BaseException:
            self.channel.inline.pop(key, None)
            raise
        return {"type": UPDATE_MESSAGE, "data": decided_message(result, context=target.context)}

    # -- helpers -----------------------------------------------------------------------------

    async def _load(self, ref: ButtonRef) -> ChannelRequest:
        call_id = ref.call_id
        if call_id is None and ref.digest is not None:
            found = await self.channel.service.store.recall(_REF_KEY + ref.digest)
            if found is not None and found.get("kind") == ref.kind:
                call_id = str(found.get("call_id"))
        if call_id is None:
            raise _Refused("This request no longer exists on the FunctionLayer server.")
        try:
            if ref.kind == FUNCTION_CALL:
                return await self.channel.service.get_function_call(call_id)
            return await self.channel.service.get_human_contact(call_id)
        except NotFoundError as exc:
            raise _Refused("This request no longer exists on the FunctionLayer server.") from exc

    async def _deliveries(self, request: ChannelRequest) -> list[dict[str, Any]]:
        return await self.channel.deliveries.load_deliveries(
            request.call_id, channel=VIA, kind=kind_of(request)
        )

    async def _audit_refusal(self, request: ChannelRequest, user: str, reason: str) -> None:
        await self.channel.service.record_audit(
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
                    via_identities=self._via_identities(target),
                )
            except ForbiddenError as exc:  # audited by the service
                raise _Refused("You are not allowed to answer this request.") from exc
            return target
        await self.channel.service.record_audit(
            kind_of(request),
            request.call_id,
            who=f"discord:{user}" if user else "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason, "channel": channel_id, "message": message_id},
        )
        raise _Refused("You are not allowed to answer this request.")
