"""examples/server/teams_approval.py runs end to end offline: its own Bot Framework stand-in
(OpenID metadata, keys, token endpoint, connector) and FunctionLayer server, the card it prints,
an RS256-signed Approve activity, the card update, and the agent's guarded call running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "server" / "teams_approval.py"


def test_teams_example_runs_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNCTIONLAYER_", "TEAMS_"))}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Teams got POST /teams/v3/conversations/19%3Aon-call%40thread.tacv2/activities" in out
    assert "Approve deploy?" in out and "version: v2.4.1" in out
    assert "actions: ['Approve', 'Reject…', 'Open in inbox']" in out
    assert "The server answered: Approved by alice via teams" in out
    assert "activities/1700000000001: Approved by alice via teams" in out
    assert "The agent got: 'deployed billing v2.4.1'" in out
