"""examples/mcp/gateway_demo.py run as a user would, in a pseudo-terminal: the gateway prompts on
that terminal (named with --tty) while its stdin/stdout carry MCP."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mcp" / "gateway_demo.py"
PROMPT = b"Approve? [y/N, or type feedback to reject; e = edit the arguments; r = answer instead]: "


def run_in_terminal(answer: str, timeout: float = 120.0) -> str:
    """Run the example with a pty as its terminal; type ``answer`` at the approval prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_API_")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the example, with the pty as stdin/stdout/controlling terminal
        os.execve(sys.executable, [sys.executable, str(EXAMPLE)], env)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if not answered and PROMPT in output:
                os.write(fd, answer.encode() + b"\n")
                answered = True
        else:
            pytest.fail(
                f"the example did not finish in {timeout}s:\n{output.decode(errors='replace')}"
            )
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace").replace("\r\n", "\n")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert answered, text
    return text


def test_the_person_rejects_at_the_terminal_with_feedback() -> None:
    text = run_in_terminal("Too much; send 50 at most")
    assert "tools: read_balance, transfer_money" in text
    assert "read_balance: acme: 1000 EUR" in text
    assert "small transfer: Transferred 20 EUR to bob." in text
    # Only the large transfer was asked about, with its arguments shown.
    assert text.count("the agent wants to call transfer_money") == 1
    assert "amount: 5,000" in text  # formatted by _display.format_number
    assert (
        "large transfer: ERROR User denied transfer_money with feedback: Too much; send 50 at most"
        in text
    )


def test_the_person_approves_at_the_terminal() -> None:
    text = run_in_terminal("y")
    assert "large transfer: Transferred 5000 EUR to mallory." in text
