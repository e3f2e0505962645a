"""examples/server/slack_approval.py runs end to end offline: its own Slack Web API stand-in and
FunctionLayer server (with the operator's policy and the approver linked to a person), the
message it prints, a signed Approve click, and the agent's guarded call running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "server" / "slack_approval.py"


def test_slack_example_runs_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNCTIONLAYER_", "SLACK_"))}
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
    assert "Slack got chat.postMessage in C0DEMO" in out and "version: v2.4.1" in out
    assert "*Approved* by *demo* via slack" in out
    assert "The agent got: 'deployed billing v2.4.1'" in out
