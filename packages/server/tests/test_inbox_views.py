"""The inbox's view data, exactly as the templates get it: where a request was routed (every
label of every channel, in order) and a request's row in the lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functionlayer import models as wire
from functionlayer_server._inbox._views import channel_context, row_for_call, row_for_contact

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_every_label_of_every_channel_in_order() -> None:
    channel = wire.ContactChannel(
        slack=wire.SlackContactChannel(
            channel_or_user_id="C1",
            context_about_channel_or_user="the ops channel",
            allowed_responder_ids=["U1", "U2"],
        ),
        email=wire.EmailContactChannel(
            address="boss@example.com",
            context_about_user="the boss",
            subject="Approve?",
            additional_recipients=[wire.EmailRecipient(address="cc@example.com", field="cc")],
        ),
        sms=wire.SMSContactChannel(phone_number="+100"),
        whatsapp=wire.WhatsAppContactChannel(phone_number="+200"),
        users=["alice", "bob"],
    )
    assert channel_context(channel, None) == [
        ("Slack", "C1"),
        ("Slack context", "the ops channel"),
        ("Slack responders", "U1, U2"),
        ("Email", "boss@example.com"),
        ("Email context", "the boss"),
        ("Email subject", "Approve?"),
        ("Email cc", "cc@example.com"),
        ("SMS", "+100"),
        ("WhatsApp", "+200"),
        ("Inbox users", "alice, bob"),
    ]


def test_empty_details_are_left_out_but_each_address_is_shown() -> None:
    channel = wire.ContactChannel(
        slack=wire.SlackContactChannel(
            channel_or_user_id="", context_about_channel_or_user="", allowed_responder_ids=[]
        ),
        email=wire.EmailContactChannel(address="a@example.com", subject=""),
    )
    assert channel_context(channel, None) == [("Slack", ""), ("Email", "a@example.com")]


def test_policy_channels_are_numbered_and_nothing_routed_says_so() -> None:
    policy = wire.ApprovalPolicy(
        responders=["alice"],
        approvals_required=2,
        channels=[
            wire.ContactChannel(users=["carol"]),
            wire.ContactChannel(sms=wire.SMSContactChannel(phone_number="+1")),
        ],
    )
    assert channel_context(None, policy) == [
        ("Responders", "alice"),
        ("Approvals required", "2"),
        ("Policy mode", policy.mode),
        ("#1 Inbox users", "carol"),
        ("#2 SMS", "+1"),
    ]
    assert channel_context(wire.ContactChannel(), None) == [
        ("Routing", "not routed: every inbox user may answer")
    ]


def test_a_call_row_and_a_contact_row() -> None:
    requested = NOW - timedelta(seconds=90)
    call = wire.FunctionCall(
        run_id="run-1",
        call_id="c/1",
        spec=wire.FunctionCallSpec(fn="send_money", kwargs={"amount": 5}),
        status=wire.FunctionCallStatus(
            requested_at=requested,
            expires_at=NOW + timedelta(minutes=5),
            approved=True,
            responded_at=NOW,
            responded_by="alice",
            responded_via="web",
        ),
    )
    row = row_for_call(call, NOW)
    assert (row.kind, row.call_id, row.run_id, row.title) == ("call", "c/1", "run-1", "send_money")
    assert (row.summary, row.url) == ("amount=5", "/inbox/calls/c%2F1")
    assert (row.requested_at, row.decided_at) == (requested, NOW)
    assert (row.waiting, row.expires_in) == ("1m 30s", "5m 00s")
    assert (row.outcome.label, row.outcome.who) == ("approved", "alice")

    contact = wire.HumanContact(
        run_id="run-2", call_id="h1", spec=wire.HumanContactSpec(msg="Which one?")
    )
    row = row_for_contact(contact, NOW)
    assert (row.kind, row.call_id, row.run_id) == ("contact", "h1", "run-2")
    assert (row.title, row.summary, row.url) == (
        "Question from the agent",
        "Which one?",
        "/inbox/contacts/h1",
    )
    assert (row.requested_at, row.decided_at, row.waiting, row.expires_in) == (None, None, "", "")
    assert row.outcome.pending
    subject = wire.HumanContact(
        run_id="r", call_id="h2", spec=wire.HumanContactSpec(msg="m", subject="Pick")
    )
    assert row_for_contact(subject, NOW).title == "Pick"
