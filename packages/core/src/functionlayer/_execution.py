"""One approval, one execution: what the guard records around a guarded function's body.

An approved call is claimed on the backend just before its body runs (only the first claim
wins, across retries, duplicate call ids and restarted agents), and how the body ended is
reported afterwards: a short summary of what it returned or raised, passed first through the
user's redaction hook so that sensitive results never leave the process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MAX_SUMMARY", "Redactor", "summarize"]

MAX_SUMMARY = 500
"""At most this many characters of a result are kept on the backend."""

Redactor = Callable[[Any], str]
"""Gets what the body returned (or the exception it raised); returns the text to record."""


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def summarize(value: Any, *, raised: bool, redact: Redactor | None) -> str:
    """The recorded summary: the redaction hook's text, else ``repr`` (returned) or
    ``Type: message`` (raised); truncated to :data:`MAX_SUMMARY` characters.

    A hook that fails records a placeholder, never the unredacted value."""
    if redact is not None:
        try:
            text = redact(value)
        except Exception as exc:
            return f"<redaction failed: {type(exc).__name__}>"
        return _truncate(str(text))
    if raised:
        return _truncate(f"{type(value).__name__}: {value}")
    try:
        return _truncate(repr(value))
    except Exception as exc:  # a broken __repr__ must not lose the result
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
