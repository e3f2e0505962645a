"""Slack's "Approve and allow similar…": the modal that shows every preset's scope in full and
lets the person pick one (``_grant_offer``), and reading the picks back from its submission."""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from functionlayer.models import FunctionCall, SlackContactChannel

from functionlayer_server._channels import _grant_offer as offer
from functionlayer_server._channels import _slack_blocks as kit
from functionlayer_server._channels._answering import Refused, allowed_identities
from functionlayer_server._channels._base import ChannelRequest, first_time
from functionlayer_server._channels._slack_api import SlackPoster, ephemeral
from functionlayer_server._errors import ServerError
from functionlayer_server._policy import Identity
from functionlayer_server._service import FUNCTION_CALL

__all__ = ["Refused", "SlackGrantAnswers", "grant_modal", "grant_picks", "slack_identities"]

VIA: Final = "slack"
_GRANT_SEEN_KEY = "slack-grant-view:"

CHOICE = "choice"
_BLOCKS = ("scope", "agents", "lifetime", "uses")


def _preset_label(key: str, call: FunctionCall) -> str:
    if key == "exact":
        return "Exactly these arguments"
    name = key.removeprefix("upto:")
    return f"{name} up to {json.dumps(call.spec.kwargs[name])}, the rest exactly"


def _select(block: str, label: str, options: list[tuple[str, str]]) -> dict[str, Any]:
    choices = [{"text": kit.plain(text, 75), "value": value} for value, text in options]
    return {
        "type": "input",
        "block_id": f"fl_grant_{block}",
        "label": kit.plain(label, 2000),
        "element": {
            "type": "static_select",
            "action_id": CHOICE,
            "options": choices,
            "initial_option": choices[0],
        },
    }


def grant_modal(call: FunctionCall, metadata: dict[str, Any]) -> dict[str, Any]:
    """The modal: what a grant does, each scope in full, and the bounded picks."""
    presets = offer.scope_presets(call)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"Approve `{kit.escape(call.spec.fn)}` (call `{kit.escape(call.call_id)}`) and "
                    "approve future calls like it at once, in your name, without asking you, "
                    "until the grant expires, is used up or is revoked. It stops working by "
                    "itself if you could no longer decide such a call."
                ),
            },
        }
    ]
    for key, lines in presets.items():
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{kit.escape(_preset_label(key, call))}*: every condition holds\n"
                    + kit.code_block("\n".join(lines), 2800),
                },
            }
        )
    blocks += [
        _select("scope", "Which arguments", [(k, _preset_label(k, call)) for k in presets]),
        _select("agents", "Which agents", list(offer.AGENTS.items())),
        _select("lifetime", "For how long", [(k, v[1]) for k, v in offer.LIFETIMES.items()]),
        _select("uses", "At most this many calls", [(k, k) for k in offer.USES]),
    ]
    return {
        "type": "modal",
        "callback_id": kit.VIEW_GRANT,
        "title": kit.plain("Approve and grant", 24),
        "submit": kit.plain("Approve and grant", 24),
        "close": kit.plain("Cancel", 24),
        "private_metadata": json.dumps(metadata),
        "blocks": blocks,
    }


def grant_picks(view: dict[str, Any]) -> dict[str, str]:
    """The selected preset ids of a submitted grant modal (unchecked: ``offer.GrantChoice.parse``
    accepts only the presets)."""
    values = (view.get("state") or {}).get("values") or {}
    picks: dict[str, str] = {}
    for block in _BLOCKS:
        selected = ((values.get(f"fl_grant_{block}") or {}).get(CHOICE) or {}).get(
            "selected_option"
        ) or {}
        picks[block] = str(selected.get("value") or "")
    return picks


class SlackAsker(Protocol):
    """What a grant answer needs from Slack's answers: the request, checked like any answer."""

    @property
    def channel(self) -> SlackPoster: ...

    async def load(self, kind: str, call_id: str) -> ChannelRequest: ...

    async def authorize(
        self, request: ChannelRequest, user: str, channel_id: str, message_ts: str
    ) -> SlackContactChannel: ...


class SlackGrantAnswers:
    """ "Approve and allow similar…": the modal, then approving and granting (``_grant_offer``)."""

    def __init__(self, answers: SlackAsker) -> None:
        self.answers = answers

    async def open(
        self,
        payload: dict[str, Any],
        call: FunctionCall,
        target: SlackContactChannel,
        metadata: dict[str, Any],
    ) -> None:
        service = self.answers.channel.service
        project = await service.get_project(FUNCTION_CALL, call.call_id)
        if not kit.arguments_fit(call) or not await offer.grant_offered(service, call, project):
            raise Refused("The operator's policy allows no grant for this call.")
        await self.answers.channel.client(target.bot_token).views_open(
            trigger_id=payload.get("trigger_id"), view=grant_modal(call, metadata)
        )

    async def submit(self, view: dict[str, Any], user: str) -> dict[str, Any] | None:
        """Approve and grant, as the person the clicker is, where they may decide the call:
        each submitted modal once (a replayed submission makes nothing)."""
        service = self.answers.channel.service
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            channel_id, ts = str(metadata.get("channel")), str(metadata.get("ts"))
            call = await self.answers.load(str(metadata.get("kind")), str(metadata.get("call_id")))
            if not isinstance(call, FunctionCall):
                raise Refused("This form does not match the request.")
            target = await self.answers.authorize(call, user, channel_id, ts)
            view_id = str(view.get("id") or "")
            if not view_id or not await first_time(service.store, _GRANT_SEEN_KEY + view_id[:200]):
                raise Refused("This form was already submitted: nothing more was granted.")
            choice = offer.GrantChoice.parse(call, grant_picks(view))
            grant = await offer.chat_grant(
                service,
                call,
                choice,
                via=VIA,
                user=user,
                via_identities=slack_identities(target),
            )
        except Refused as refused:
            return _grant_error(str(refused))
        except (ValueError, TypeError, AttributeError):
            return _grant_error("This form is not a FunctionLayer request.")
        except ServerError as exc:
            return _grant_error(f"Nothing was granted: {exc.message}")
        await ephemeral(
            self.answers.channel,
            channel_id,
            user,
            f"Approved, and granted ({grant.id}): {offer.describe_choice(call, choice)}.",
            target.bot_token,
        )
        return None  # closes the modal


def slack_identities(target: SlackContactChannel) -> list[Identity] | None:
    """The target's own allow-list (``allowed_responder_ids``) as identities, if any."""
    return allowed_identities(VIA, target)


def _grant_error(message: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {"fl_grant_scope": message[:1000]}}
