"""Slack's "Approve and allow similar…": the modal that shows every preset's scope in full and
lets the person pick one (``_grant_offer``), and reading the picks back from its submission."""

from __future__ import annotations

import json
from typing import Any

from functionlayer._models import FunctionCall

from functionlayer_server._channels._grant_offer import (
    AGENTS,
    LIFETIMES,
    USES,
    scope_presets,
)
from functionlayer_server._channels._slack_blocks import VIEW_GRANT, code_block, escape, plain

__all__ = ["grant_modal", "grant_picks"]

CHOICE = "choice"
_BLOCKS = ("scope", "agents", "lifetime", "uses")


def _preset_label(key: str, call: FunctionCall) -> str:
    if key == "exact":
        return "Exactly these arguments"
    name = key.removeprefix("upto:")
    return f"{name} up to {json.dumps(call.spec.kwargs[name])}, the rest exactly"


def _select(block: str, label: str, options: list[tuple[str, str]]) -> dict[str, Any]:
    choices = [{"text": plain(text, 75), "value": value} for value, text in options]
    return {
        "type": "input",
        "block_id": f"fl_grant_{block}",
        "label": plain(label, 2000),
        "element": {
            "type": "static_select",
            "action_id": CHOICE,
            "options": choices,
            "initial_option": choices[0],
        },
    }


def grant_modal(call: FunctionCall, metadata: dict[str, Any]) -> dict[str, Any]:
    """The modal: what a grant does, each scope in full, and the bounded picks."""
    presets = scope_presets(call)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"Approve `{escape(call.spec.fn)}` (call `{escape(call.call_id)}`) and "
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
                    "text": f"*{escape(_preset_label(key, call))}*: every condition holds\n"
                    + code_block("\n".join(lines), 2800),
                },
            }
        )
    blocks += [
        _select("scope", "Which arguments", [(k, _preset_label(k, call)) for k in presets]),
        _select("agents", "Which agents", list(AGENTS.items())),
        _select("lifetime", "For how long", [(k, v[1]) for k, v in LIFETIMES.items()]),
        _select("uses", "At most this many calls", [(k, k) for k in USES]),
    ]
    return {
        "type": "modal",
        "callback_id": VIEW_GRANT,
        "title": plain("Approve and grant", 24),
        "submit": plain("Approve and grant", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(metadata),
        "blocks": blocks,
    }


def grant_picks(view: dict[str, Any]) -> dict[str, str]:
    """The selected preset ids of a submitted grant modal (unchecked: ``GrantChoice.parse``
    accepts only the presets)."""
    values = (view.get("state") or {}).get("values") or {}
    picks: dict[str, str] = {}
    for block in _BLOCKS:
        selected = ((values.get(f"fl_grant_{block}") or {}).get(CHOICE) or {}).get(
            "selected_option"
        ) or {}
        picks[block] = str(selected.get("value") or "")
    return picks
