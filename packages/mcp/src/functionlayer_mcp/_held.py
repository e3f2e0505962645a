"""The pending calls one gateway session remembers, so that a retry resumes its request.

A gated call that waits longer than ``hold_seconds`` answers "pending" and is remembered by tool
and arguments (:func:`held_key`): the same call made again resumes the same request, with the
same deadline, instead of asking anew. A 2026-07-28 client is handed an unguessable handle
instead (its ``requestState``), redeemed once. Both memories are bounded: the oldest is
forgotten first, and a forgotten request is never run (its call id is not asked about again,
and it expires).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

__all__ = ["MAX_HELD", "HeldCalls", "held_key", "pending_message"]

MAX_HELD = 256
"""Pending calls a gateway session remembers to resume (by key, and by handle)."""


class HeldCalls:
    """One session's pending calls: by key (tool and arguments) and by handle handed out."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, float]] = {}
        self._handles: dict[str, tuple[str, str, float]] = {}

    def remember(self, key: str, call_id: str, deadline: float) -> None:
        """Keep a pending call to resume; the oldest is forgotten first."""
        self._by_key.pop(key, None)
        while len(self._by_key) >= MAX_HELD:
            del self._by_key[next(iter(self._by_key))]
        self._by_key[key] = (call_id, deadline)

    def resumed(self, key: str) -> tuple[str, float] | None:
        """The pending request (call id, deadline) of the same call made before, if any."""
        return self._by_key.get(key)

    def forget(self, key: str, call_id: str) -> None:
        """The call was decided (or given up): the same call made later asks afresh."""
        if self._by_key.get(key, (None,))[0] == call_id:
            del self._by_key[key]

    def hand_out(self, key: str, call_id: str, deadline: float) -> str:
        """A fresh, unguessable handle for a pending call (the ``requestState`` a 2026-07-28
        client echoes on its retry). Known to this session only, for this tool and these
        arguments, and redeemed once: each retry gets a new one."""
        while len(self._handles) >= MAX_HELD:
            del self._handles[next(iter(self._handles))]
        handle = secrets.token_urlsafe(32)
        self._handles[handle] = (key, call_id, deadline)
        return handle

    def redeem(self, handle: str) -> tuple[str, str, float] | None:
        """What a handle was handed out for (key, call id, deadline), once; None if unknown."""
        return self._handles.pop(handle, None)


def held_key(name: str, arguments: dict[str, Any]) -> str:
    """What makes two calls "the same call": the tool's name and the arguments, canonically."""
    return json.dumps([name, arguments], sort_keys=True, separators=(",", ":"), default=repr)


def pending_message(name: str, call_id: str) -> str:
    return (
        f"{name} has not run: a person has been asked to approve it and has not decided yet "
        f"(approval {call_id}). Call {name} again with exactly the same arguments to keep "
        "waiting for that decision; it runs only if they approve, and at most once."
    )
