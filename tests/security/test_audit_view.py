"""The one rule for what of an audit entry leaves the server (``_audit_view``): every key that
authenticates an answer or is a credential is dropped, at any depth; everything else stays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from functionlayer_server._audit_view import SECRET_KEYS, visible_details, visible_entry
from functionlayer_server._service import AuditEntry

# Listed here on purpose (not read from SECRET_KEYS): removing one from the rule fails a test.
SECRETS = [
    "message_ids",
    "message_id",
    "msgid",
    "nonce",
    "token",
    "secret",
    "signing_secret",
    "inbound_secret",
    "bot_token",
    "password",
    "signature",
    "authorization",
]


def test_the_rule_names_exactly_these_keys() -> None:
    assert set(SECRETS) == SECRET_KEYS


@pytest.mark.parametrize("key", SECRETS)
def test_a_secret_key_is_dropped_at_any_depth(key: str) -> None:
    details = {
        key: "<fl-0123@fl.example>",
        "channel": "email",
        "data": {
            key: {"alice@corp.example": "<fl-4567@fl.example>"},
            key.upper(): "x",
            "recipients": ["alice@corp.example"],
            "copies": [{key: "y", "to": "bob@corp.example"}],
        },
    }
    shown = visible_details(details)
    assert shown == {
        "channel": "email",
        "data": {"recipients": ["alice@corp.example"], "copies": [{"to": "bob@corp.example"}]},
    }
    assert "fl-" not in repr(shown)
    assert details["data"][key]  # type: ignore[index]  # the stored details are not changed


def test_other_details_are_shown_as_they_are() -> None:
    details = {
        "project": "default",
        "run_id": "r",
        "reason": "sender is not the recipient of the message replied to",
        "claim_id": "c1",
        "action": "open",
        "data": {"channel": "C1", "ts": "1.2", "subject": "Approval needed"},
    }
    assert visible_details(details) == details
    assert visible_details({}) == {}
    assert visible_details(None) == {}


def test_visible_entry_is_the_entry_json_without_secrets() -> None:
    entry = AuditEntry(
        call_id="c",
        kind="function_call",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        who="functionlayer-server",
        via="email",
        action="delivered",
        details={"channel": "email", "data": {"message_ids": {"a@b.example": "<fl-1@x>"}}},
    )
    assert visible_entry(entry) == {**entry.to_json(), "details": {"channel": "email", "data": {}}}
