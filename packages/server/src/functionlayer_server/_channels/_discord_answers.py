"""Discord answers: button clicks and modal submissions on a delivered message, turned into
decisions through the service by persons the policy lets decide there (signature, freshness
and replays are checked by ``_discord``'s route first). Refusals are shown only to the clicker
(an ephemeral message) and audited; the service decides each request once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import httpx
from functionlayer.models import (
    DiscordContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
)

from functionlayer_server._channels import _discord_ids as ids
from functionlayer_server._channels._answering import (
    NeedsConfirmation,
    chosen_option,
    refusals,
)
from functionlayer_server._channels._base import (
    ChannelRequest,
    first_time,
    needs_confirmation,
    quorum_progress,
)
from functionlayer_server._channels._discord_checks import (
    VIA,
    DiscordChecks,
    DiscordPoster,
    Refused,
)
from functionlayer_server._channels._discord_grants import DiscordGrants, is_grant_form
from functionlayer_server._channels._discord_ids import ButtonRef, kind_of, parse_custom_id
from functionlayer_server._channels._discord_messages import (
    arguments_fit,
    confirm_message,
    decided_message,
    ephemeral,
    modal,
    request_message,
)
from functionlayer_server._channels._discord_parts import (
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    DiscordApiError,
    text_input,
    user_of,
)
from functionlayer_server._service import FUNCTION_CALL

__all__ = ["VIA", "DiscordAnswers"]

log = logging.getLogger("functionlayer_server.channels.discord")

Answered = TypeVar("Answered", FunctionCall, HumanContact)

_SEEN_KEY = "discord:interaction:"


class _At(NamedTuple):
    """Who answered, and on which message (as the interaction names them)."""

    user: str
    channel_id: str
    message_id: str


class DiscordAnswers:
    def __init__(self, channel: DiscordPoster) -> None:
        self.channel = channel
        self.checks = DiscordChecks(channel)
        self.grants = DiscordGrants(channel, self.checks)

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
            request = await self.checks.load(ref)
        except Refused:
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
        if kind == MESSAGE_COMPONENT and is_grant_form(str(data.get("custom_id") or "")):
            return await self.grants.form_answer(payload, data)
        ref = parse_custom_id(str(data.get("custom_id") or ""))
        if kind not in (MESSAGE_COMPONENT, MODAL_SUBMIT) or ref is None:
            return ephemeral("This is not a FunctionLayer request.")
        if ref.modal != (kind == MODAL_SUBMIT):
            return ephemeral("This is not a FunctionLayer request.")
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        assert isinstance(message, dict)
        at = _At(
            user_of(payload),
            str(payload.get("channel_id") or message.get("channel_id") or ""),
            str(message.get("id") or ""),
        )
        try:
            request = await self.checks.load(ref)
            if kind == MESSAGE_COMPONENT:
                return await self._click(request, ref, at, data)
            text = (text_input(data.get("components")) or "").strip()
            return await self._submit(request, ref, at, text)
        except Refused as refused:
            return ephemeral(str(refused))
        except Exception:
            log.exception("Discord interaction failed")
            return ephemeral("Something went wrong on the FunctionLayer server; nothing changed.")

    async def _click(
        self, request: ChannelRequest, ref: ButtonRef, at: _At, data: dict[str, Any]
    ) -> dict[str, Any]:
        user, channel_id, message_id = at
        await self.checks.check_open(request, user)
        if ref.action == ids.ACTION_CONFIRM:
            remembered = self.channel.confirming.pop((user, request.call_id), None)
            if remembered is None or remembered[0] != channel_id:
                raise Refused("This confirmation expired: click Approve on the request again.")
            message_id = remembered[1]
            at = _At(user, channel_id, message_id)
        target = await self.checks.authorize(request, user, channel_id, message_id)
        if isinstance(request, FunctionCall) and ref.action == ids.ACTION_GRANT:
            return await self.grants.open_form(request, user, channel_id, message_id)
        if isinstance(request, FunctionCall):
            if ref.action in (ids.ACTION_APPROVE, ids.ACTION_CONFIRM):
                if not arguments_fit(request):
                    raise Refused(
                        "This message cannot show every argument, so it cannot approve the "
                        "call: open it in the inbox to decide."
                    )
                confirmed = ref.action == ids.ACTION_CONFIRM
                approve = FunctionCallStatus(
                    approved=True, confirmed_irreversible=confirmed or None
                )
                try:
                    return await self._decide(request, approve, at, target)
                except NeedsConfirmation:
                    if len(self.channel.confirming) > 1000:
                        self.channel.confirming.clear()
                    self.channel.confirming[(user, request.call_id)] = (channel_id, message_id)
                    return confirm_message(request)
            if ref.action == ids.ACTION_REJECT:
                return modal(request, str(data.get("custom_id")))
            if ref.action == ids.ACTION_REJECT_OPTION and ref.option is not None:
                name = chosen_option(request.spec.reject_options, ref.option)
                decision = FunctionCallStatus(approved=False, reject_option_name=name)
                return await self._decide(request, decision, at, target)
        else:
            if ref.action == ids.ACTION_REPLY:
                return modal(request, str(data.get("custom_id")))
            if ref.action == ids.ACTION_RESPOND_OPTION and ref.option is not None:
                name = chosen_option(request.spec.response_options, ref.option)
                return await self._answer(request, None, name, at, target)
        raise Refused("This button does not match the request.")

    async def _submit(
        self, request: ChannelRequest, ref: ButtonRef, at: _At, text: str
    ) -> dict[str, Any]:
        """A modal's text: the rejection's feedback or the reply."""
        user, channel_id, message_id = at
        if not text:
            return ephemeral("Please write something: it is what the agent gets back.")
        await self.checks.check_open(request, user)
        target = await self.checks.authorize(request, user, channel_id, message_id)
        if isinstance(request, FunctionCall) and ref.action == ids.ACTION_REJECT:
            decision = FunctionCallStatus(approved=False, comment=text)
            return await self._decide(request, decision, at, target)
        if isinstance(request, HumanContact) and ref.action == ids.ACTION_REPLY:
            return await self._answer(request, text, None, at, target)
        raise Refused("This form does not match the request.")

    async def _respond(
        self,
        request: Answered,
        at: _At,
        respond: Callable[[], Awaitable[Answered]],
        *,
        confirm: bool = False,
    ) -> Answered:
        """``respond`` (the service's decision or answer) while this message is left to the
        interaction's response (``update`` rewrites the others); the service's refusals become
        :class:`Refused` (``refusals``)."""
        key = (kind_of(request), request.call_id)
        self.channel.inline[key] = at.message_id

        async def already() -> None:
            await self.checks.audit_refusal(request, at.user, "already decided")

        async with refusals(already, confirm=confirm):
            try:
                return await respond()
            except BaseException:
                self.channel.inline.pop(key, None)
                raise

    async def _decide(
        self,
        call: FunctionCall,
        decision: FunctionCallStatus,
        at: _At,
        target: DiscordContactChannel,
    ) -> dict[str, Any]:
        user, message_id = at.user, at.message_id
        identities = self.checks.via_identities(target)

        def decide() -> Awaitable[FunctionCall]:
            return self.channel.service.respond_function_call(
                call.call_id,
                decision,
                responder=f"discord:{user}",
                via=VIA,
                via_identities=identities,
            )

        result = await self._respond(call, at, decide, confirm=True)
        if not result.completed:  # quorum: recorded, more approvals needed
            self.channel.inline.pop((FUNCTION_CALL, call.call_id), None)
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
        for delivery in await self.channel.deliveries_of(result):
            if delivery.get("message") == message_id:
                group = await self.channel.group_body(result, delivery, target.context)
                if group is not None:  # a review group: the message with every row again
                    return {"type": UPDATE_MESSAGE, "data": group}
        return {"type": UPDATE_MESSAGE, "data": decided_message(result, context=target.context)}

    async def _answer(
        self,
        contact: HumanContact,
        response: str | None,
        option: str | None,
        at: _At,
        target: DiscordContactChannel,
    ) -> dict[str, Any]:
        user = at.user
        identities = self.checks.via_identities(target)

        def answer() -> Awaitable[HumanContact]:
            return self.channel.service.respond_human_contact(
                contact.call_id,
                response=response,
                response_option_name=option,
                responder=f"discord:{user}",
                via=VIA,
                via_identities=identities,
            )

        result = await self._respond(contact, at, answer)
        return {"type": UPDATE_MESSAGE, "data": decided_message(result, context=target.context)}
