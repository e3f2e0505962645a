"""Discord's "Approve and allow similar…": a form only the clicker sees (an ephemeral message)
that shows every preset scope in full (``_grant_offer``) and lets the person pick with select
menus, then approves the call and grants through ``approve_and_grant`` with ``via="discord"``.

The picks travel in the form's ``custom_id`` values (``fg:<part><picks>:<kind>:<ref>``), so they
are untrusted: every pick must be one of the presets (``GrantChoice.parse``). The form is bound
to the delivered message its opener clicked on (per process, like the confirm step of an
irreversible function): a form this process did not open for that person fails closed, and
every answer on it is checked like a click on that message (``_discord_checks``).
"""

from __future__ import annotations

import logging
from typing import Any

from functionlayer.models import FunctionCall

from functionlayer_server._channels import _grant_offer as offer
from functionlayer_server._channels._base import ChannelRequest
from functionlayer_server._channels._discord_checks import (
    VIA,
    DiscordChecks,
    DiscordPoster,
    Refused,
)
from functionlayer_server._channels._discord_ids import KINDS, ButtonRef, ref_of
from functionlayer_server._channels._discord_messages import (
    CONTENT_LIMIT,
    EMBED_LIMIT,
    EMBEDS_TOTAL,
    EPHEMERAL_FLAG,
    MAX_EMBEDS,
    NO_MENTIONS,
    arguments_fit,
    clip,
    code_block,
    ephemeral,
    escape,
)
from functionlayer_server._channels._discord_parts import UPDATE_MESSAGE, user_of
from functionlayer_server._errors import ServerError
from functionlayer_server._service import FUNCTION_CALL

__all__ = ["DiscordGrants", "form_fits", "grant_form", "grant_offered", "is_grant_form"]

log = logging.getLogger("functionlayer_server.channels.discord")

PREFIX = "fg"
PARTS = {"s": "scope", "a": "agents", "l": "lifetime", "u": "uses"}
MAKE = "g"
_INTRO = (
    "Approve **{fn}** and approve future calls like it at once, in your name, without asking "
    "you, until the grant expires, is used up or is revoked. It stops working by itself if you "
    "could no longer decide such a call. Each scope below is shown in full; every condition "
    "must hold."
)


def is_grant_form(value: str) -> bool:
    return value.startswith(PREFIX + ":")


def _picks(call: FunctionCall, choice: dict[str, str]) -> str:
    keys = list(offer.scope_presets(call))
    scope = str(keys.index(choice["scope"])) if choice["scope"] in keys else "x"
    return ".".join((scope, choice["agents"], choice["lifetime"], choice["uses"]))


def _form_id(part: str, call: FunctionCall, choice: dict[str, str]) -> str:
    return ref_of(f"{PREFIX}:{part}{_picks(call, choice)}", call)


def _parse(value: str) -> tuple[str, list[str], ButtonRef] | None:
    """The part, the raw picks and the request of a grant form ``custom_id``, or None."""
    parts = value.split(":", 3)
    if len(parts) != 4 or parts[0] != PREFIX or parts[2] not in KINDS or not parts[3]:
        return None
    part, picks = parts[1][:1], parts[1][1:].split(".")
    if (part not in PARTS and part != MAKE) or len(picks) != 4:
        return None
    ref = parts[3]
    call_id, digest = (None, ref[1:]) if ref.startswith("#") else (ref, None)
    return part, picks, ButtonRef(MAKE, KINDS[parts[2]], call_id, digest)


def _choice(call: FunctionCall, picks: list[str]) -> dict[str, str]:
    keys = list(offer.scope_presets(call))
    index = picks[0]
    scope = keys[int(index)] if index.isdigit() and int(index) < len(keys) else ""
    return {"scope": scope, "agents": picks[1], "lifetime": picks[2], "uses": picks[3]}


def _scope_label(number: int, key: str, call: FunctionCall) -> str:
    if key == "exact":
        return f"Scope {number}: exactly these arguments"
    name = key.removeprefix("upto:")
    return f"Scope {number}: {name} up to this call's value, the rest exactly"


def _embeds(call: FunctionCall) -> list[dict[str, Any]]:
    return [
        {
            "title": clip(_scope_label(number, key, call), 256),
            "description": code_block("\n".join(lines) or "(no arguments)", EMBED_LIMIT),
        }
        for number, (key, lines) in enumerate(offer.scope_presets(call).items(), 1)
    ]


def form_fits(call: FunctionCall) -> bool:
    """Whether the form shows every preset scope in full within Discord's embed limits."""
    embeds = _embeds(call)
    sizes = [len(e["title"]) + len(e["description"]) for e in embeds]
    whole = all("… (truncated)" not in e["description"] for e in embeds)
    return whole and bool(embeds) and len(embeds) <= MAX_EMBEDS and sum(sizes) <= EMBEDS_TOTAL


def _select(
    part: str, call: FunctionCall, choice: dict[str, str], options: list[tuple[str, str]]
) -> dict[str, Any]:
    keys = list(offer.scope_presets(call))
    selected = str(keys.index(choice["scope"])) if part == "s" else choice[PARTS[part]]
    return {
        "type": 1,
        "components": [
            {
                "type": 3,
                "custom_id": _form_id(part, call, choice),
                "min_values": 1,
                "max_values": 1,
                "options": [
                    {"label": clip(label, 100), "value": value, "default": value == selected}
                    for value, label in options
                ],
            }
        ],
    }


def grant_form(call: FunctionCall, choice: dict[str, str]) -> dict[str, Any]:
    """The form's message: each scope in full (embeds), the picks (selects) and the button."""
    presets = list(offer.scope_presets(call))
    scopes = [(str(i), _scope_label(i + 1, key, call)) for i, key in enumerate(presets)]
    make = {
        "type": 2,
        "style": 3,
        "label": "Approve and grant",
        "custom_id": _form_id(MAKE, call, choice),
    }
    return {
        "content": clip(_INTRO.format(fn=escape(clip(call.spec.fn, 60))), CONTENT_LIMIT),
        "embeds": _embeds(call),
        "components": [
            _select("s", call, choice, scopes),
            _select("a", call, choice, list(offer.AGENTS.items())),
            _select("l", call, choice, [(k, v[1]) for k, v in offer.LIFETIMES.items()]),
            _select("u", call, choice, [(k, f"at most {k} calls") for k in offer.USES]),
            {"type": 1, "components": [make]},
        ],
        "allowed_mentions": NO_MENTIONS,
    }


async def grant_offered(poster: DiscordPoster, request: ChannelRequest) -> bool:
    """Whether a message offers "Approve and allow similar…": the message shows every argument,
    the form every scope, and the operator's policy allows grants (``_grant_offer``)."""
    if not isinstance(request, FunctionCall) or not arguments_fit(request):
        return False
    if not form_fits(request):
        return False
    project = await poster.service.get_project(FUNCTION_CALL, request.call_id)
    return await offer.grant_offered(poster.service, request, project)


class DiscordGrants:
    """Opening the form, changing its picks, and approving and granting."""

    def __init__(self, channel: DiscordPoster, checks: DiscordChecks) -> None:
        self.channel = channel
        self.checks = checks

    async def open_form(
        self, call: FunctionCall, user: str, channel_id: str, message_id: str
    ) -> dict[str, Any]:
        """The form, for a clicker already authorised on the delivered message."""
        if not await grant_offered(self.channel, call):
            raise Refused("The operator's policy allows no grant for this call.")
        if len(self.channel.granting) > 1000:
            self.channel.granting.clear()
        self.channel.granting[(user, call.call_id)] = (channel_id, message_id)
        first = {
            "scope": next(iter(offer.scope_presets(call))),
            "agents": next(iter(offer.AGENTS)),
            "lifetime": next(iter(offer.LIFETIMES)),
            "uses": next(iter(offer.USES)),
        }
        form = grant_form(call, first)
        return {"type": 4, "data": {**form, "flags": EPHEMERAL_FLAG}}

    async def form_answer(self, payload: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """A select changed (the form again, with the new pick) or "Approve and grant"."""
        try:
            return await self._form_answer(payload, data)
        except Refused as refused:
            return ephemeral(str(refused))
        except ServerError as exc:
            return ephemeral(f"Nothing was granted: {exc.message}")
        except Exception:
            log.exception("Discord grant form failed")
            return ephemeral("Something went wrong on the FunctionLayer server; nothing changed.")

    async def _form_answer(self, payload: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        parsed = _parse(str(data.get("custom_id") or ""))
        if parsed is None:
            raise Refused("This is not a FunctionLayer request.")
        part, picks, ref = parsed
        call = await self.checks.load(ref)
        if not isinstance(call, FunctionCall):
            raise Refused("This form does not match the request.")
        user = user_of(payload)
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        assert isinstance(message, dict)
        channel_id = str(payload.get("channel_id") or message.get("channel_id") or "")
        remembered = self.channel.granting.get((user, call.call_id))
        if remembered is None or remembered[0] != channel_id:
            raise Refused('This form expired: click "Approve and allow similar…" again.')
        await self.checks.check_open(call, user)
        target = await self.checks.authorize(call, user, channel_id, remembered[1])
        choice = _choice(call, picks)
        if part in PARTS:
            values = data.get("values")
            picked = values[0] if isinstance(values, list) and len(values) == 1 else None
            if part == "s":
                choice["scope"] = _choice(call, [str(picked), "", "", ""])["scope"]
            else:
                choice[PARTS[part]] = str(picked)
        parsed_choice = offer.GrantChoice.parse(call, choice)  # presets only
        if part in PARTS:
            return {"type": UPDATE_MESSAGE, "data": grant_form(call, choice)}
        if not await grant_offered(self.channel, call):
            raise Refused("The operator's policy allows no grant for this call.")
        self.channel.granting.pop((user, call.call_id), None)
        grant = await offer.chat_grant(
            self.channel.service,
            call,
            parsed_choice,
            via=VIA,
            user=user,
            via_identities=self.checks.via_identities(target),
        )
        text = f"Approved, and granted ({grant.id}): {offer.describe_choice(call, parsed_choice)}."
        done = {"content": clip(escape(text), CONTENT_LIMIT), "embeds": [], "components": []}
        return {"type": UPDATE_MESSAGE, "data": {**done, "allowed_mentions": NO_MENTIONS}}
