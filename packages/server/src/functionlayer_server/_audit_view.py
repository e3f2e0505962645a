"""What of an audit entry leaves the server: the one rule for every readable surface.

The audit trail is read with any token of the project, agent tokens included (the API's
``/function_calls/{id}/audit``, ``/audit.jsonl``) and by people in the inbox. Channels keep
some of their working data in audit details (a delivery's data is its ``delivered`` entry),
and some of it authenticates a person's answer: an email reply is matched to the copy it
answers by that copy's Message-ID, so whoever can read a Message-ID can forge a reply "from"
its recipient. Such values must never be shown.

:func:`visible_details` drops every key named in :data:`SECRET_KEYS`, at any depth, from an
entry's details; :func:`visible_entry` is the JSON of an entry as every surface shows it.
Nobody reading the audit needs these values (approvers see the request and decide in their
own channel; operators with the database have the server's secret anyway), so the same view
serves agents, approvers and admins: there is one rule, not one per audience.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functionlayer_server._service import AuditEntry

__all__ = ["SECRET_KEYS", "visible_details", "visible_entry"]

SECRET_KEYS: frozenset[str] = frozenset(
    {
        # email: the per-recipient Message-IDs a reply is matched by (records written before
        # the channel stopped storing them here), and any single one
        "message_ids",
        "message_id",
        "msgid",
        # email: a link's random nonce (a part of the signed link token)
        "nonce",
        # anything that is a credential by its name
        "token",
        "secret",
        "signing_secret",
        "inbound_secret",
        "bot_token",
        "password",
        "signature",
        "authorization",
    }
)
"""Detail keys never shown, wherever they occur in the details."""


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _scrub(inner)
            for key, inner in value.items()
            if not (isinstance(key, str) and key.lower() in SECRET_KEYS)
        }
    if isinstance(value, list | tuple):
        return [_scrub(inner) for inner in value]
    return value


def visible_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """``details`` without any key in :data:`SECRET_KEYS` (at any depth)."""
    if not details:
        return {}
    return dict(_scrub(details))


GRANT_ACTIONS = frozenset({"granted", "grant_revoked"})


def visible_entry(entry: AuditEntry, *, agent: bool = False) -> dict[str, Any]:
    """The entry's JSON (``call_id, kind, at, who, via, action, details``) as it may be shown.
    ``agent``: for an agent token, which learns which grant approved its call and nothing of
    the grant (its scope, uses, lifetime, who else it serves): only the grant id."""
    shown = {**entry.to_json(), "details": visible_details(entry.details)}
    if agent and (entry.via == "grant" or entry.action in GRANT_ACTIONS):
        shown["details"] = {"grant": entry.details.get("grant")}
    return shown
