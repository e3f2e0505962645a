"""examples/server/discord_approval.py runs end to end offline: its own Discord REST stand-in and
FunctionLayer server, the message it prints, a signed Approve click, and the agent's guarded
call running."""

from __future__ import annotations

from pathlib import Path

from packages.server.tests.channels._examples import run_example


def test_discord_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("discord_approval.py", tmp_path, settings="DISCORD_")
    assert "Discord got POST /api/v10/channels/1234567890/messages" in out
    assert "**Approve deploy?**" in out and "version: v2.4.1" in out
    assert "allowed_mentions: {'parse': []}" in out
    assert "Interaction response type 7" in out
    assert "**Approved** by **alice** via discord" in out
    assert "The agent got: 'deployed billing v2.4.1'" in out
