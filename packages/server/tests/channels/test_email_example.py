"""examples/server/email_approval.py runs end to end offline: its own SMTP server and
FunctionLayer server, the email it prints, the Approve link followed (GET, then POST), and the
agent's guarded call running."""

from __future__ import annotations

from pathlib import Path

from packages.server.tests.channels._examples import run_example


def test_email_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("email_approval.py", tmp_path, "--auto")
    assert "Approval needed: transfer" in out and "amount: 250" in out
    assert "GET  -> 200 (confirmation page)" in out
    assert "POST -> 200 (approved)" in out
    assert "Agent got: sent 250 EUR to DE89 3704 0044 0532 0130 00" in out
    assert "email to finance@example.com" in out
