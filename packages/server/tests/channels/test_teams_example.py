"""examples/server/teams_approval.py runs end to end offline: its own Bot Framework stand-in
(OpenID metadata, keys, token endpoint, connector) and FunctionLayer server, the card it prints,
an RS256-signed Approve activity, the card update, and the agent's guarded call running."""

from __future__ import annotations

from pathlib import Path

from packages.server.tests.channels._examples import run_example


def test_teams_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("teams_approval.py", tmp_path, settings="TEAMS_")
    assert "Teams got POST /teams/v3/conversations/19%3Aon-call%40thread.tacv2/activities" in out
    assert "Approve deploy?" in out and "version: v2.4.1" in out
    assert "actions: ['Approve', 'Reject…', 'Open in inbox']" in out
    assert "The server answered: Approved by alice via teams" in out
    assert "activities/1700000000001: Approved by alice via teams" in out
    assert "The agent got: 'deployed billing v2.4.1'" in out
