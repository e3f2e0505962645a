"""Slack answers: the buttons and modals of a delivered message, turned into decisions (and
grants) through the service, by persons the policy lets decide there. Refusals are audited and
shown only to the clicker; a second click can never decide twice (the service decides once).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Final

from functionlayer.models import (
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    SlackContactChannel,
)

from functionlayer_server._channels._answering import (
    NeedsConfirmation,
    Refused,
    authorize_person,
    delivered_to,
    refusals,
)
from functionlayer_server._channels._base import (
    ChannelRequest,
    quorum_progress,
)
from functionlayer_server._channels._planning import (
    delivery_tiers,
    escalation_targets,
    request_kind,
)
from functionlayer_server._channels._slack_api import SlackPoster, ephemeral
from functionlayer_server._channels._slack_blocks import (
    ACTION_APPROVE,
    ACTION_APPROVE_CONFIRM,
    ACTION_GRANT,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
    INPUT_ACTION,
    INPUT_BLOCK,
    VIEW_GRANT,
    VIEW_REJECT,
    VIEW_REPLY,
    arguments_fit,
    confirm_blocks,
    outcome_text,
    reject_modal,
    reply_modal,
)
from functionlayer_server._channels._slack_grants import SlackGrantAnswers
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
    ServerError,
)
from functionlayer_server._policy import OperatorPolicy
from functionlayer_server._service import FUNCTION_CALL

if TYPE_CHECKING:
    pass

__all__ = ["VIA", "SlackAnswers", "slack_target"]

log = logging.getLogger("functionlayer_server.channels.slack")

VIA: Final = "slack"


class SlackAnswers:
    def __init__(self, channel: SlackPoster) -> None:
        self.channel = channel
        self.grants = SlackGrantAnswers(self)

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
                request = await self.load(str(value.get("kind")), call_id)
                delivered_ts = message_ts
                if action_id == ACTION_APPROVE_CONFIRM:
                    # Clicked on the confirmation shown only to this person: it names the
                    # request's message, which must be a delivery in this same channel (and
                    # the person allowed there), as for any other button.
                    if str(value.get("channel")) != channel_id:
                        raise Refused("This confirmation does not belong to this channel.")
                    delivered_ts = str(value["ts"])
                target = await self.authorize(request, user, channel_id, delivered_ts)
                await self._act(
                    payload, request, target, action_id, value, user, channel_id, delivered_ts
                )
            except Refused as refused:
                await ephemeral(self.channel, channel_id, user, str(refused), None)
            except (ValueError, KeyError, TypeError):
                await ephemeral(
                    self.channel,
                    channel_id,
                    user,
                    "This button is not a FunctionLayer request.",
                    None,
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
            raise Refused(_already(request))
        if isinstance(request, FunctionCall):
            if action_id in (ACTION_APPROVE, ACTION_APPROVE_CONFIRM):
                if not arguments_fit(request):
                    raise Refused(
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
                except NeedsConfirmation:
                    await ephemeral(
                        self.channel,
                        channel_id,
                        user,
                        f"{request.spec.fn} cannot be undone: confirm to approve it.",
                        token,
                        blocks=confirm_blocks(request, channel_id, message_ts),
                    )
            elif action_id == ACTION_REJECT:
                await self.channel.client(token).views_open(
                    trigger_id=payload.get("trigger_id"), view=reject_modal(request, metadata)
                )
            elif action_id == ACTION_GRANT:
                await self.grants.open(payload, request, target, metadata)
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
                await self.channel.client(token).views_open(
                    trigger_id=payload.get("trigger_id"), view=reply_modal(request, metadata)
                )
            elif action_id.startswith(ACTION_RESPOND_OPTION + ":"):
                try:
                    await self.channel.service.respond_human_contact(
                        request.call_id,
                        response=None,
                        response_option_name=str(value["option"]),
                        responder=f"slack:{user}",
                        via=VIA,
                    )
                except (AlreadyDecidedError, InvalidDecisionError, ForbiddenError) as exc:
                    raise Refused(exc.message) from exc

    async def _decide(
        self,
        call: FunctionCall,
        decision: FunctionCallStatus,
        user: str,
        channel_id: str,
        token: str | None,
    ) -> FunctionCall:
        async with refusals(confirm=True):
            result = await self.channel.service.respond_function_call(
                call.call_id, decision, responder=f"slack:{user}", via=VIA
            )
        if not result.completed:  # quorum: recorded, more approvals needed
            await ephemeral(
                self.channel,
                channel_id,
                user,
                f"Your approval is recorded. {quorum_progress(result)}",
                token,
            )
            await self.channel.rewrite(
                result, await self.channel.deliveries_of(result), decided=False
            )
        return result

    async def _view_submission(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        view = payload.get("view") or {}
        callback = view.get("callback_id")
        user = str((payload.get("user") or {}).get("id") or "")
        if callback == VIEW_GRANT:
            return await self.grants.submit(view, user)
        if callback not in (VIEW_REJECT, VIEW_REPLY):
            return None
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
            request = await self.load(str(metadata.get("kind")), str(metadata.get("call_id")))
            await self.authorize(
                request, user, str(metadata.get("channel")), str(metadata.get("ts"))
            )
            if callback == VIEW_REJECT and isinstance(request, FunctionCall):
                await self.channel.service.respond_function_call(
                    request.call_id,
                    FunctionCallStatus(approved=False, comment=text),
                    responder=f"slack:{user}",
                    via=VIA,
                )
            elif callback == VIEW_REPLY and isinstance(request, HumanContact):
                await self.channel.service.respond_human_contact(
                    request.call_id, response=text, responder=f"slack:{user}", via=VIA
                )
            else:
                return _input_error("This form does not match the request.")
        except Refused as refused:
            return _input_error(str(refused))
        except AlreadyDecidedError as exc:
            return _input_error(f"Already decided: {exc.message}")
        except ServerError as exc:
            return _input_error(exc.message)
        return None  # closes the modal

    async def load(self, kind: str, call_id: str) -> ChannelRequest:
        try:
            if kind == FUNCTION_CALL:
                return await self.channel.service.get_function_call(call_id)
            if kind == "human_contact":
                return await self.channel.service.get_human_contact(call_id)
        except NotFoundError as exc:
            raise Refused("This request no longer exists on the FunctionLayer server.") from exc
        raise Refused("This button is not a FunctionLayer request.")

    async def authorize(
        self, request: ChannelRequest, user: str, channel_id: str, message_ts: str
    ) -> SlackContactChannel:
        """The target this message was delivered to, if ``user`` may answer there; else the
        refusal is audited and raised."""
        place = {"channel": channel_id, "ts": message_ts}
        rules = self.channel.service.rules
        target = await delivered_to(
            self.channel, request, place, lambda key: slack_target(request, key, rules)
        )

        async def audit(reason: str) -> None:
            # Slack's refusals name the user as Slack sent it (no "slack:" prefix).
            await self.channel.service.record_audit(
                request_kind(request),
                request.call_id,
                who=user or "unknown",
                via=VIA,
                action="refused",
                details={"reason": reason, **place},
            )

        unknown = (
            "no Slack user in the interaction",
            "the message is not a delivery of this request",
        )
        return await authorize_person(
            self.channel.service, request, user, target, via=VIA, unknown=unknown, audit=audit
        )


def slack_target(
    request: ChannelRequest, channel_or_user_id: str, rules: OperatorPolicy
) -> SlackContactChannel | None:
    """The target a message was delivered to: one of the request's, or one of the operator's
    escalation targets (a reminder's escalation)."""
    for tier in [*delivery_tiers(request), escalation_targets(rules)]:
        for target in tier:
            if target.slack is not None and target.slack.channel_or_user_id == channel_or_user_id:
                return target.slack
    return None


def _already(request: ChannelRequest) -> str:
    return "Already decided: " + outcome_text(request).replace("*", "")


def _input_error(message: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {INPUT_BLOCK: message[:1000]}}
