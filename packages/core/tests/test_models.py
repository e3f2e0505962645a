"""Wire compatibility with the predecessor's JSON, and the additions' defaults."""

from __future__ import annotations

import json

import pytest
from functionlayer import (
    ApprovalPendingError,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    HumanContact,
)
from pydantic import ValidationError

# Shaped like the predecessor SDK's request bodies (null fields included).
PREDECESSOR_CALL = {
    "run_id": "run-1",
    "call_id": "call-1",
    "spec": {
        "fn": "send_email",
        "kwargs": {"to": "a@b.c"},
        "channel": {
            "slack": {
                "channel_or_user_id": "C123",
                "context_about_channel_or_user": "the ops channel",
                "bot_token": None,
                "allowed_responder_ids": ["U1"],
                "thread_ts": None,
            },
            "sms": None,
            "whatsapp": None,
            "email": None,
        },
        "reject_options": [
            {
                "name": "no",
                "title": "No",
                "description": None,
                "prompt_fill": None,
                "interactive": False,
            }
        ],
        "state": {"opaque": [1, 2]},
    },
    "status": None,
}


def test_predecessor_payload_round_trips_with_its_fields_intact() -> None:
    call = FunctionCall.model_validate(PREDECESSOR_CALL)
    dumped = json.loads(call.model_dump_json())
    for key, value in PREDECESSOR_CALL["spec"].items():  # type: ignore[union-attr]
        assert key in dumped["spec"]
        if key != "channel":
            assert dumped["spec"][key] == value
    assert dumped["spec"]["channel"]["slack"]["allowed_responder_ids"] == ["U1"]
    # FunctionLayer's additions are optional and present as nulls/defaults.
    assert dumped["spec"]["timeout_seconds"] is None and dumped["spec"]["policy"] is None


def test_decided_status_from_an_old_server_parses() -> None:
    call = FunctionCall.model_validate(
        {
            **PREDECESSOR_CALL,
            "status": {
                "requested_at": "2024-05-01T10:00:00Z",
                "responded_at": "2024-05-01T10:01:00Z",
                "approved": False,
                "comment": "not now",
                "reject_option_name": "no",
            },
        }
    )
    done = call.as_completed()
    assert (done.approved, done.comment, done.reject_option_name, done.expired) == (
        False,
        "not now",
        "no",
        False,
    )


def test_pending_call_has_no_completed_view() -> None:
    call = FunctionCall.model_validate(
        {**PREDECESSOR_CALL, "status": {"requested_at": "2024-05-01T10:00:00Z"}}
    )
    assert not call.completed
    with pytest.raises(ApprovalPendingError):
        call.as_completed()


def test_human_contact_shape() -> None:
    contact = HumanContact.model_validate(
        {
            "run_id": "r",
            "call_id": "c",
            "spec": {"msg": "Which colour?", "channel": {"email": {"address": "a@b.c"}}},
            "status": {"requested_at": "2024-05-01T10:00:00Z", "response": "blue"},
        }
    )
    assert contact.as_completed().response == "blue"
    assert contact.spec.channel is not None and contact.spec.channel.describe() == "email (a@b.c)"


@pytest.mark.parametrize(
    "bad",
    [
        {"fn": "f", "kwargs": [1, 2]},
        {"kwargs": {}},
        {"fn": "f", "timeout_seconds": 0},
        {"fn": "f", "policy": {"approvals_required": 0}},
        {"fn": "f", "policy": {"mode": "sometimes"}},
    ],
)
def test_invalid_specs_are_refused_clearly(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FunctionCallSpec.model_validate(bad)


def test_channel_descriptions() -> None:
    assert ContactChannel(users=["alice"]).describe() == "the web inbox (alice)"
    assert ContactChannel().describe() == "a human"
