"""Running the server's command line (``python -m functionlayer_server._cli``) in a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def run_cli(
    *args: str, stdin: str | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command's exit code and output (text); it may take a minute at the most."""
    command = [sys.executable, "-m", "functionlayer_server._cli", *args]
    options: dict[str, Any] = {"input": stdin, "cwd": cwd, "env": env, "timeout": 60}
    return subprocess.run(command, capture_output=True, text=True, **options)
