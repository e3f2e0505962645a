"""The call id of the tool call being executed and what the agent says about it, set by
adapters around a guarded call; and the review group of the model turn it belongs to
(``group_scope``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from functionlayer._channel_models import RequestContext

__all__ = [
    "call_id_scope",
    "current_call_id",
    "current_group_id",
    "current_request_context",
    "group_id_for",
    "group_scope",
    "new_group_id",
    "request_context_scope",
]

_CALL_ID: ContextVar[str | None] = ContextVar("functionlayer_call_id", default=None)
_REQUEST_CONTEXT: ContextVar[RequestContext | None] = ContextVar(
    "functionlayer_request_context", default=None
)
_GROUP_ID: ContextVar[str | None] = ContextVar("functionlayer_group_id", default=None)
_T = TypeVar("_T")


@contextmanager
def _scoped(var: ContextVar[_T], value: _T) -> Iterator[None]:
    """``var`` is ``value`` inside the block, and what it was after it."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


@contextmanager
def call_id_scope(call_id: str | None) -> Iterator[None]:
    """Use ``call_id`` (e.g. the LLM's ``tool_call_id``) for guarded calls made inside the block.

    Asking again under the same call id returns the existing request instead of asking the human
    twice, so a retried or resumed turn reuses the decision.
    """
    with _scoped(_CALL_ID, call_id):
        yield


def current_call_id() -> str | None:
    return _CALL_ID.get()


@contextmanager
def request_context_scope(context: RequestContext | None) -> Iterator[None]:
    """Attach ``context`` (the user's request, the model's reason) to guarded calls made inside
    the block, for the approver to read. It is the agent's text: every channel shows it as
    such, never as a fact."""
    with _scoped(_REQUEST_CONTEXT, context):
        yield


def current_request_context() -> RequestContext | None:
    return _REQUEST_CONTEXT.get()


def new_group_id() -> str:
    import uuid

    return f"turn-{uuid.uuid4().hex}"


def group_id_for(call_ids: Iterable[str]) -> str:
    """A turn's group id derived from its calls' ids: asking again about the same turn (a
    resumed pause) sends the same group."""
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(call_ids)).encode()).hexdigest()
    return f"turn-{digest[:32]}"


@contextmanager
def group_scope(group_id: str | None = None) -> Iterator[str]:
    """Requests created inside the block carry one review group id (a new one unless given),
    so a person can review a model turn's calls together on one page. Each call is still its
    own request with its own decision. Yields the group id."""
    group = group_id or new_group_id()
    with _scoped(_GROUP_ID, group):
        yield group


def current_group_id() -> str | None:
    return _GROUP_ID.get()
