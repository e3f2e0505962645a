"""examples/core/quickstart.py: the core alone, approved or rejected at the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "core" / "quickstart.py"


def _run(stdin: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_")}
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_approved_it_runs() -> None:
    shown = _run("y\n")
    assert "customer: ACME Corp" in shown
    assert shown.rstrip().endswith("Invoice of 1200 EUR sent to ACME Corp.")


def test_rejected_the_feedback_is_the_result() -> None:
    shown = _run("n\nnot this month\n")
    assert "EUR sent to" not in shown
    assert shown.rstrip().endswith("User denied send_invoice with feedback: not this month")
