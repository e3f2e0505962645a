"""The call id of the tool call being executed, set by adapters around a guarded call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["call_id_scope", "current_call_id"]

_CALL_ID: ContextVar[str | None] = ContextVar("functionlayer_call_id", default=None)


@contextmanager
def call_id_scope(call_id: str | None) -> Iterator[None]:
    """Use ``call_id`` (e.g. the LLM's ``tool_call_id``) for guarded calls made inside the block.

    Asking again under the same call id returns the existing request instead of asking the human
    twice, so a retried or resumed turn reuses the decision.
    """
    token = _CALL_ID.set(call_id)
    try:
        yield
    finally:
        _CALL_ID.reset(token)


def current_call_id() -> str | None:
    return _CALL_ID.get()
