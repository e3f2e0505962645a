"""Why a request can no longer be answered, in words (the refusal's message)."""

from __future__ import annotations

from functionlayer._models import FunctionCall

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
    by = f" by {status.responded_by}" if status is not None and status.responded_by else ""
    if isinstance(request, FunctionCall) and request.status is not None:
        if request.status.response is not None:
            what = "answered"
        else:
            what = "approved" if request.status.approved else "rejected"
    else:
        what = "answered"
    return f"{noun} {request.call_id!r} was already {what}{by}"
