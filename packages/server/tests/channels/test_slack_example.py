"""examples/server/slack_approval.py runs end to end offline: its own Slack Web API stand-in and
FunctionLayer server (with the operator's policy and the approver linked to a person), the
message it prints, a signed Approve click, and the agent's guarded call running."""

from __future__ import annotations

from pathlib import Path

from packages.server.tests.channels._examples import run_example


def test_slack_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("slack_approval.py", tmp_path, settings="SLACK_")
    assert "Slack got chat.postMessage in C0DEMO" in out and "version: v2.4.1" in out
    assert "*Approved* by *demo* via slack" in out
    assert "The agent got: 'deployed billing v2.4.1'" in out
