"""One model of "who decided what" (``_outcome.outcome``), rendered by every channel from its
table: for the same outcome, Slack, Discord, Teams, email and the inbox state the same facts
(the status, who, through what, the comment or answer, the option, edits, the quorum)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from functionlayer import models
from functionlayer_server._channels import (
    _discord_messages,
    _email_render,
    _slack_blocks,
    _teams_cards,
)
from functionlayer_server._inbox import _views
from functionlayer_server._outcome import STATUSES, outcome
from functionlayer_server._policy import decided_message

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
VIAS = ["slack", "email", "web", "discord", "teams", "grant", "policy"]


def _markup_free(text: str) -> str:
    return text.replace("*", "").replace("\\", "")


def _inbox(request: models.FunctionCall | models.HumanContact) -> str:
    box = (
        _views.call_outcome(request)
        if isinstance(request, models.FunctionCall)
        else _views.contact_outcome(request)
    )
    parts = [box.label, box.summary, box.who, box.via, box.comment, box.option, box.response]
    return " ".join([p for p in parts if p] + box.approvals)


RENDERERS: dict[str, Callable[[models.FunctionCall | models.HumanContact], str]] = {
    "slack": _slack_blocks.outcome_text,
    "discord": _discord_messages.outcome_text,
    "teams": _teams_cards.outcome_text,
    "email": _email_render.describe_decision,
    "inbox": _inbox,
}


def _call(**status: Any) -> models.FunctionCall:
    return models.FunctionCall(
        run_id="run-1",
        call_id="call-1",
        spec=models.FunctionCallSpec(fn="pay", kwargs={"amount": 5}),
        status=models.FunctionCallStatus(responded_at=NOW, **status) if status else None,
    )


def _contact(**status: Any) -> models.HumanContact:
    return models.HumanContact(
        run_id="run-1",
        call_id="contact-1",
        spec=models.HumanContactSpec(msg="Which account?"),
        status=models.HumanContactStatus(responded_at=NOW, **status) if status else None,
    )


def cases(via: str) -> list[tuple[str, models.FunctionCall | models.HumanContact, list[str]]]:
    """(status, request, the facts every channel must state)."""
    by = {"responded_by": "alice", "responded_via": via}
    return [
        (
            "approved",
            _call(approved=True, comment="looks fine", **by),
            ["pproved", "alice", via, "looks fine"],
        ),
        (
            "approved",
            _call(
                approved=True,
                edited_kwargs={"amount": 4},
                approvals=["bob", "alice"],
                **by,
            ),
            ["pproved", "alice", via, "edit", "bob"],
        ),
        (
            "rejected",
            _call(approved=False, comment="too much", reject_option_name="ask-finance", **by),
            ["ejected", "alice", via, "too much", "ask-finance"],
        ),
        (
            "answered_instead",
            _call(approved=False, response="use the other account", **by),
            ["nswered", "alice", via, "use the other account"],
        ),
        (
            "expired",
            _call(approved=False, expired=True, comment="nobody answered within 30 seconds"),
            ["xpired", "nobody answered within 30 seconds"],
        ),
        (
            "abandoned",
            _call(approved=False, expired=True, abandoned_at=NOW, comment="the agent left"),
            ["bandoned", "the agent left"],
        ),
        (
            "answered",
            _contact(response="account 7", response_option_name="savings", **by),
            ["nswered", "alice", via, "account 7"],
        ),
        ("expired", _contact(expired=True), ["xpired"]),
    ]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("channel", sorted(RENDERERS))
def test_every_channel_states_the_same_facts(channel: str, via: str) -> None:
    seen: set[str] = set()
    for status, request, facts in cases(via):
        assert outcome(request).status == status
        seen.add(status)
        text = _markup_free(RENDERERS[channel](request))
        for fact in facts:
            assert fact in text, f"{channel} leaves out {fact!r} of {status}: {text!r}"
    assert seen == set(STATUSES) - {"pending"}


@pytest.mark.parametrize("channel", sorted(RENDERERS))
def test_pending_is_said_without_a_decider(channel: str) -> None:
    for request in (_call(), _contact()):
        assert outcome(request).status == "pending"
        assert "alice" not in RENDERERS[channel](request)


def test_the_grant_and_the_rule_are_facts_of_the_outcome() -> None:
    granted = _call(
        approved=True,
        responded_by="alice",
        responded_via="grant",
        comment="approved under grant g_0123456789abcdef",
    )
    fact = outcome(granted)
    assert (fact.status, fact.who, fact.via, fact.grant) == (
        "approved",
        "alice",
        "grant",
        "g_0123456789abcdef",
    )
    by_rule = outcome(
        _call(approved=False, responded_by="rule:big-payments", responded_via="policy")
    )
    assert (by_rule.status, by_rule.rule, by_rule.grant) == ("rejected", "big-payments", None)
    for render in RENDERERS.values():
        assert "g_0123456789abcdef" in _markup_free(render(granted))


def test_agent_text_cannot_break_the_markup() -> None:
    """The comment and the answer are escaped by each channel's table, not copied raw."""
    hostile = _call(
        approved=False,
        comment="<!channel> @everyone *bold*",
        responded_by="<@U1>",
        responded_via="slack",
    )
    assert "<!channel>" not in _slack_blocks.outcome_text(hostile)
    assert "<@U1>" not in _slack_blocks.outcome_text(hostile)
    assert "@everyone" not in _discord_messages.outcome_text(hostile)


def test_the_already_decided_message_names_the_decider() -> None:
    message = decided_message(_call(approved=True, responded_by="alice", responded_via="slack"))
    assert message == "function call 'call-1' was already approved by alice"
    message = decided_message(_contact(response="7", responded_by="bob"))
    assert message == "human contact 'contact-1' was already answered by bob"
