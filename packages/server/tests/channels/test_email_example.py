"""examples/server/email_approval.py runs end to end offline: its own SMTP server and
FunctionLayer server, the email it prints, the Approve link followed (GET, then POST), and the
agent's guarded call running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "server" / "email_approval.py"


def test_email_example_runs_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--auto"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Approval needed: transfer" in out and "amount: 250" in out
    assert "GET  -> 200 (confirmation page)" in out
    assert "POST -> 200 (approved)" in out
    assert "Agent got: sent 250 EUR to DE89 3704 0044 0532 0130 00" in out
    assert "email to finance@example.com" in out
