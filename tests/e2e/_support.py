"""What the end-to-end tests share: the calculator every agent uses, the example runner, and
the model's tool call ids read from a recorded request."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman

ROOT = Path(__file__).resolve().parents[2]


class Calculator:
    """A multiply (guarded or plain, sync or async) and a plain add, recording every time
    multiply's body runs. A test module subclasses it with its ``run_id`` and its adapter's
    ``tools`` (``make_tools``); ``tools`` holds the adapter's tools for the two functions."""

    run_id: ClassVar[str] = "e2e"
    make_tools: Callable[[list[Callable[..., Any]]], Any]

    def __init__(
        self, human: ScriptedHuman, *, use_async: bool = False, guarded: bool = True
    ) -> None:
        self.fl = FunctionLayer(backend=human, run_id=self.run_id)
        self.multiplied: list[tuple[int, int]] = []
        guard = self.fl.require_approval() if guarded else (lambda fn: fn)

        if use_async:

            @guard
            async def multiply(x: int, y: int) -> int:
                """Multiply two integers."""
                self.multiplied.append((x, y))
                return x * y

        else:

            @guard
            def multiply(x: int, y: int) -> int:
                """Multiply two integers."""
                self.multiplied.append((x, y))
                return x * y

        def add(x: int, y: int) -> int:
            """Add two integers."""
            return x + y

        self.tools = type(self).make_tools([multiply, add])


def run_example(
    example: str, answers: str, env: dict[str, str] | None = None, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<example>`` with ``answers`` typed at its terminal prompts."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / example)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def model_call_ids(request: dict[str, Any]) -> list[str]:
    """The tool call ids the model made, as the next request replays them (either API)."""
    ids = [c["id"] for m in request.get("messages") or [] for c in m.get("tool_calls") or []]
    ids += [
        item["call_id"]
        for item in request.get("input") or []
        if isinstance(item, dict) and item.get("type") == "function_call"
    ]
    return ids
