"""Why a request can no longer be answered, in words (the refusal's message)."""

from __future__ import annotations

from functionlayer.models import FunctionCall

from functionlayer_server._outcome import outcome
from functionlayer_server._policy._common import Request

__all__ = ["decided_message"]


def decided_message(request: Request) -> str:
    status = request.status
    noun = "function call" if isinstance(request, FunctionCall) else "human contact"
    if status is not None and status.abandoned_at is not None:
        return (
            f"{noun} {request.call_id!r} was abandoned: the agent stopped waiting at "
            f"{status.abandoned_at:%Y-%m-%d %H:%M:%S} UTC, so it can no longer be answered "
            "and nothing will run"
        )
    if status is not None and status.expired:
        return f"{noun} {request.call_id!r} has expired; it can no longer be answered"
    fact = outcome(request)
    by = f" by {fact.who}" if fact.who else ""
    what = fact.status if fact.status in ("approved", "rejected") else "answered"
    return f"{noun} {request.call_id!r} was already {what}{by}"
