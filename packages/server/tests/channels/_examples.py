"""Running one of examples/server/*.py the way a reader would: a fresh process, a tmp home and
working folder, no FunctionLayer (or the channel's) settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "server"


def run_example(name: str, tmp_path: Path, *args: str, settings: str | None = None) -> str:
    """The example's output once it exited 0; ``settings`` is the channel's prefix of
    environment variables (``"SLACK_"``), dropped like ``FUNCTIONLAYER_*``."""
    dropped = ("FUNCTIONLAYER_",) if settings is None else ("FUNCTIONLAYER_", settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
