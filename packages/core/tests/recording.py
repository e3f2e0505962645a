"""A guarded function that records its runs, for tests that check nothing ran (or what did)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functionlayer import FunctionLayer


def recorded_act(fl: FunctionLayer) -> tuple[Callable[[int], Any], list[int]]:
    """``act(x)``, guarded by ``fl.require_approval()``, returns ``x``; ``ran`` records the
    ``x`` of each run."""
    ran: list[int] = []

    @fl.require_approval()
    def act(x: int) -> int:
        ran.append(x)
        return x

    return act, ran
