"""``python -m functionlayer.demo``: the offline demo a pip user runs, approved and rejected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(stdin: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNCTIONLAYER_", "OPENAI_"))}
    # External HTTP goes nowhere: the demo must only talk to its own model on 127.0.0.1.
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    env.update(NO_PROXY="127.0.0.1,localhost")
    out = subprocess.run(
        [sys.executable, "-m", "functionlayer.demo"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_approved_the_body_runs_and_the_agent_finishes(tmp_path: Path) -> None:
    shown = _run("y\n", tmp_path)
    assert "the agent wants to call multiply" in shown
    assert "[multiply ran: 2 * 5]" in shown
    assert "multiply -> 10" in shown
    assert shown.rstrip().endswith("Agent: 2 multiplied by 5 is 10, and adding 32 gives 42.")


def test_rejected_the_body_does_not_run_and_the_model_gets_the_feedback(tmp_path: Path) -> None:
    shown = _run("n\nnot with these numbers\n", tmp_path)
    assert "[multiply ran" not in shown
    assert "add ->" not in shown
    assert "multiply -> User denied multiply with feedback: not with these numbers" in shown
    assert shown.rstrip().endswith(
        "The multiply tool said: User denied multiply with feedback: not with these numbers"
    )
