"""examples/server/discord_approval.py runs end to end offline: its own Discord REST stand-in and
FunctionLayer server, the message it prints, a signed Approve click, and the agent's guarded
call running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "server" / "discord_approval.py"


def test_discord_example_runs_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNCTIONLAYER_", "DISCORD_"))}
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
    assert "Discord got POST /api/v10/channels/1234567890/messages" in out
    assert "**Approve deploy?**" in out and "version: v2.4.1" in out
    assert "allowed_mentions: {'parse': []}" in out
    assert "Interaction response type 7" in out
    assert "**Approved** by **alice** via discord" in out
    assert "The agent got: 'deployed billing v2.4.1'" in out
