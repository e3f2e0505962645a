"""Each of examples/server/*_approval.py runs end to end offline, the way a reader runs it, and
prints what it did: what the channel's stand-in got, the person's decision, the agent's result."""

from __future__ import annotations

from pathlib import Path

import pytest

from packages.server.tests.channels._examples import run_example

EXAMPLES = [
    # Its own Discord REST stand-in and FunctionLayer server, the message it prints, a signed
    # Approve click, and the agent's guarded call running.
    pytest.param(
        ("discord_approval.py",),
        "DISCORD_",
        [
            "Discord got POST /api/v10/channels/1234567890/messages",
            "**Approve deploy?**",
            "version: v2.4.1",
            "allowed_mentions: {'parse': []}",
            "Interaction response type 7",
            "**Approved** by **alice** via discord",
            "The agent got: 'deployed billing v2.4.1'",
        ],
        id="discord",
    ),
    # Its own SMTP server and FunctionLayer server, the email it prints, the Approve link
    # followed (GET, then POST), and the agent's guarded call running.
    pytest.param(
        ("email_approval.py", "--auto"),
        None,
        [
            "Approval needed: transfer",
            "amount: 250",
            "GET  -> 200 (confirmation page)",
            "POST -> 200 (approved)",
            "Agent got: sent 250 EUR to DE89 3704 0044 0532 0130 00",
            "email to finance@example.com",
        ],
        id="email",
    ),
    # Its own Slack Web API stand-in and FunctionLayer server (with the operator's policy and the
    # approver linked to a person), the message it prints, a signed Approve click, and the
    # agent's guarded call running.
    pytest.param(
        ("slack_approval.py",),
        "SLACK_",
        [
            "Slack got chat.postMessage in C0DEMO",
            "version: v2.4.1",
            "*Approved* by *demo* via slack",
            "The agent got: 'deployed billing v2.4.1'",
        ],
        id="slack",
    ),
    # Its own Bot Framework stand-in (OpenID metadata, keys, token endpoint, connector) and
    # FunctionLayer server, the card it prints, an RS256-signed Approve activity, the card
    # update, and the agent's guarded call running.
    pytest.param(
        ("teams_approval.py",),
        "TEAMS_",
        [
            "Teams got POST /teams/v3/conversations/19%3Aon-call%40thread.tacv2/activities",
            "Approve deploy?",
            "version: v2.4.1",
            "actions: ['Approve', 'Reject…', 'Open in inbox']",
            "The server answered: Approved by alice via teams",
            "activities/1700000000001: Approved by alice via teams",
            "The agent got: 'deployed billing v2.4.1'",
        ],
        id="teams",
    ),
]


@pytest.mark.parametrize(("command", "settings", "printed"), EXAMPLES)
def test_example_runs_offline(
    tmp_path: Path, command: tuple[str, ...], settings: str | None, printed: list[str]
) -> None:
    out = run_example(command[0], tmp_path, *command[1:], settings=settings)
    missing = [line for line in printed if line not in out]
    assert not missing, f"{missing} not in the example's output:\n{out}"
