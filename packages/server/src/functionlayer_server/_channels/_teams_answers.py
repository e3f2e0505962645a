"""Teams answers: a click or a typed answer on a delivered card, turned into a decision
through the service by a person the policy lets decide there (the activity's token and replays
are checked by ``_teams``'s route first). Refusals are audited; nothing is decided twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final, Protocol

import httpx
from functionlayer.models import (
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    TeamsContactChannel,
)

from functionlayer_server._channels._answering import (
    Refused,
    allowed_identities,
    audit_refused,
    authorize_person,
    chosen_option,
    delivered_to,
    refusals,
)
from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
    quorum_progress,
)
from functionlayer_server._channels._planning import delivery_tiers
from functionlayer_server._channels._teams_cards import (
    ACTION_APPROVE,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
    CardRef,
    arguments_fit,
    outcome_text,
    parse_value,
)
from functionlayer_server._errors import (
    ServerError,
)
from functionlayer_server._policy import Identity
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings

__all__ = [
    "VIA",
    "TeamsAnswers",
    "TeamsApiError",
    "as_dict",
    "conversation_of",
    "teams_target",
    "user_of",
]

log = logging.getLogger("functionlayer_server.channels.teams")

VIA: Final = "teams"


class TeamsApiError(Exception):
    """The connector or the token endpoint answered with an error."""


def conversation_of(value: str) -> str:
    """A conversation id without the ``;messageid=`` suffix Teams adds for a channel thread."""
    return value.split(";messageid=", 1)[0].strip()


def teams_target(request: ChannelRequest, key: str) -> TeamsContactChannel | None:
    for tier in delivery_tiers(request):
        for target in tier:
            if target.teams is not None and target.teams.conversation_id.strip() == key:
                return target.teams
    return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def user_of(activity: dict[str, Any]) -> str:
    """The clicker's Entra object id (``from.aadObjectId``), lower case; ``""`` without one."""
    value = as_dict(activity.get("from")).get("aadObjectId")
    return value.strip().lower()[:200] if isinstance(value, str) else ""


class TeamsPoster(Protocol):
    """What answering needs from the channel: its records and card rewrites."""

    service: ApprovalService
    settings: Settings
    deliveries: DeliveryStore

    async def rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None: ...

    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]: ...


class TeamsAnswers:
    def __init__(self, channel: TeamsPoster) -> None:
        self.channel = channel

    async def handle_activity(self, activity: dict[str, Any]) -> dict[str, Any]:
        """Act on a verified, first-seen activity; the return value is the response body."""
        ref = parse_value(activity.get("value"))
        if activity.get("type") != "message" or ref is None:
            return {"ok": True, "detail": "nothing to do"}
        user = user_of(activity)
        conversation = conversation_of(str(as_dict(activity.get("conversation")).get("id") or ""))
        reply_to = str(activity.get("replyToId") or "")
        try:
            request = await self.load(ref)
            return await self._act(request, ref, user, conversation, reply_to)
        except Refused as refused:
            return {"ok": False, "detail": str(refused)}
        except Exception:
            log.exception("Teams activity failed")
            return {"ok": False, "detail": "Something went wrong on the server; nothing changed."}

    async def _act(
        self,
        request: ChannelRequest,
        ref: CardRef,
        user: str,
        conversation: str,
        reply_to: str,
    ) -> dict[str, Any]:
        if request.completed:
            await audit_refused(self.channel.service, request, VIA, user, "already decided")
            raise Refused("Already decided: " + outcome_text(request))
        target = await self._authorize(request, user, conversation, reply_to)
        text = (ref.text or "").strip()
        if isinstance(request, FunctionCall):
            if ref.action == ACTION_APPROVE:
                if not arguments_fit(request):
                    raise Refused(
                        "This card cannot show every argument, so it cannot approve the call: "
                        "open it in the inbox to decide."
                    )
                return await self._decide(request, FunctionCallStatus(approved=True), user, target)
            if ref.action == ACTION_REJECT:
                if not text:
                    raise Refused("Please write something: it is what the agent gets back.")
                decision = FunctionCallStatus(approved=False, comment=text)
                return await self._decide(request, decision, user, target)
            if ref.action == ACTION_REJECT_OPTION and ref.option is not None:
                name = chosen_option(request.spec.reject_options, ref.option)
                decision = FunctionCallStatus(approved=False, reject_option_name=name)
                return await self._decide(request, decision, user, target)
        else:
            if ref.action == ACTION_REPLY:
                if not text:
                    raise Refused("Please write something: it is what the agent gets back.")
                return await self._answer(request, user, target, response=text)
            if ref.action == ACTION_RESPOND_OPTION and ref.option is not None:
                name = chosen_option(request.spec.response_options, ref.option)
                return await self._answer(request, user, target, option=name)
        await audit_refused(
            self.channel.service, request, VIA, user, "the action does not match the request"
        )
        raise Refused("This action does not match the request.")

    def _already(self, request: ChannelRequest, user: str) -> Callable[[], Awaitable[None]]:
        return lambda: audit_refused(self.channel.service, request, VIA, user, "already decided")

    async def _decide(
        self,
        call: FunctionCall,
        decision: FunctionCallStatus,
        user: str,
        target: TeamsContactChannel,
    ) -> dict[str, Any]:
        async with refusals(self._already(call, user)):
            result = await self.channel.service.respond_function_call(
                call.call_id,
                decision,
                responder=Identity(VIA, user),
                via=VIA,
                via_identities=allowed_identities(VIA, target),
            )
        if not result.completed:  # quorum: recorded, more approvals needed
            try:
                await self.channel.rewrite(
                    result, await self.channel.deliveries_of(result), decided=False
                )
            except (RuntimeError, TeamsApiError, httpx.HTTPError) as exc:
                log.warning("Teams: showing quorum progress failed: %s", exc)
            return {
                "ok": True,
                "detail": f"Your approval is recorded. {quorum_progress(result) or ''}",
            }
        return {"ok": True, "detail": outcome_text(result)}

    async def _answer(
        self,
        contact: HumanContact,
        user: str,
        target: TeamsContactChannel,
        *,
        response: str | None = None,
        option: str | None = None,
    ) -> dict[str, Any]:
        async with refusals(self._already(contact, user)):
            result = await self.channel.service.respond_human_contact(
                contact.call_id,
                response=response,
                response_option_name=option,
                responder=Identity(VIA, user),
                via=VIA,
                via_identities=allowed_identities(VIA, target),
            )
        return {"ok": True, "detail": outcome_text(result)}

    # -- helpers -----------------------------------------------------------------------------

    async def find(self, ref: CardRef) -> ChannelRequest | None:
        """The request a card names, or None."""
        try:
            return await self.load(ref)
        except Refused:
            return None

    async def load(self, ref: CardRef) -> ChannelRequest:
        try:
            if ref.kind == "function_call":
                return await self.channel.service.get_function_call(ref.call_id)
            return await self.channel.service.get_human_contact(ref.call_id)
        except ServerError as exc:  # not found, or ambiguous between projects
            raise Refused("This request is not available on the FunctionLayer server.") from exc

    async def _authorize(
        self, request: ChannelRequest, user: str, conversation: str, reply_to: str
    ) -> TeamsContactChannel:
        """The target the clicked card was delivered to, if ``user`` may answer there; else
        the refusal is audited and raised."""
        place = {"conversation": conversation, "activity": reply_to}
        target = await delivered_to(
            self.channel, request, place, partial(teams_target, request), wait=bool(reply_to)
        )

        async def audit(reason: str) -> None:
            details = {"conversation": conversation[:200], "activity": reply_to[:200]}
            await audit_refused(self.channel.service, request, VIA, user, reason, **details)

        unknown = (
            "no Teams user (from.aadObjectId) in the activity",
            "the card is not a delivery of this request",
        )
        return await authorize_person(
            self.channel.service, request, user, target, via=VIA, unknown=unknown, audit=audit
        )
