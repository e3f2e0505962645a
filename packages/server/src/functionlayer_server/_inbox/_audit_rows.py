"""The audit trail for people: each entry's action in words and its details as labelled
fields (never a JSON dump), hidden characters marked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functionlayer.display import format_number, make_visible

__all__ = ["AuditRow", "audit_row"]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass
class AuditRow:
    when: str
    who: str
    via: str
    action: str
    details: list[tuple[str, str]]


_ACTION_WORDS = {
    "created": "requested",
    "approval_recorded": "approval recorded",
    "responded": "answered instead",
    "execution_claimed": "execution started",
    "execution_reported": "execution finished",
}


def _label(key: str) -> str:
    return make_visible(key.replace("_", " "))[0].capitalize()


def _detail_text(value: Any) -> str:
    if isinstance(value, str):
        return make_visible(value)[0]
    if isinstance(value, bool) or value is None:
        return "yes" if value else "no" if value is False else "—"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(_detail_text(v) for v in value) or "—"
    if isinstance(value, Mapping):
        return "; ".join(f"{_label(str(k))}: {_detail_text(v)}" for k, v in value.items())
    return make_visible(_compact(value))[0]


def audit_row(when: str, who: str, via: str, action: str, details: Any) -> AuditRow:
    """One audit entry for people: the action in words, each detail a labelled field (empty
    ones left out), values as text (never a JSON dump), hidden characters marked."""
    fields: list[tuple[str, str]] = []
    if isinstance(details, Mapping):
        for key, value in details.items():
            if value is None or value == "" or value == [] or value == {}:
                continue
            fields.append((_label(str(key)), _detail_text(value)))
    elif details:
        fields.append(("Details", _detail_text(details)))
    return AuditRow(
        when=when,
        who=make_visible(who)[0],
        via=make_visible(via)[0],
        action=_ACTION_WORDS.get(action, action.replace("_", " ")),
        details=fields,
    )
