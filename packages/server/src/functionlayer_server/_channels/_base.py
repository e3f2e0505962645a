"""The contract every contact channel (Slack, email, ...) implements.

A channel turns a request into a message somewhere humans are, and turns their answers back into
decisions through the :class:`~functionlayer_server.ApprovalService` (``respond_function_call`` /
``respond_human_contact`` with ``via=channel.name``), so quorum, expiry, audit and webhooks stay in
one place. The :class:`~functionlayer_server._channels._dispatch.Dispatcher` decides *when* and
*where* a request goes (routing, escalation tiers, retries); a channel only knows *how*.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter
from functionlayer.models import ContactChannel, FunctionCall, HumanContact

from functionlayer_server._service import FUNCTION_CALL, ApprovalService

__all__ = [
    "Channel",
    "ChannelRequest",
    "Deliveries",
    "DeliveryStore",
    "find_delivery",
    "first_time",
    "needs_confirmation",
    "quorum_progress",
]

ChannelRequest = FunctionCall | HumanContact
Deliveries = list[dict[str, Any]]
"""A channel's saved deliveries of one request (their ``data`` dicts)."""


class DeliveryStore(Protocol):
    """What the dispatcher offers channels for remembering their deliveries (durably, in the
    audit trail: each saved delivery *is* the request's ``delivered`` audit entry)."""

    async def save_delivery(
        self, call_id: str, channel: str, data: dict[str, Any], *, kind: str | None = None
    ) -> None: ...

    async def load_deliveries(
        self, call_id: str, *, channel: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]: ...


async def find_delivery(
    load: Callable[[], Awaitable[list[dict[str, Any]]]],
    matches: Callable[[dict[str, Any]], bool],
    *,
    wait: bool = True,
) -> dict[str, Any] | None:
    """The saved delivery an answer came from (the first ``matches`` accepts), or None.

    A delivery is saved just after its message is posted, so a click can beat the record:
    with ``wait``, look up to four times over 0.6 s before giving up."""
    for attempt in range(4):
        for delivery in await load():
            if matches(delivery):
                return delivery
        if attempt == 3 or not wait:
            break
        await asyncio.sleep(0.1 * (attempt + 1))
    return None


class _KeyStore(Protocol):
    async def remember(self, key: str, value: dict[str, Any]) -> None: ...

    async def recall(self, key: str) -> dict[str, Any] | None: ...


async def first_time(store: _KeyStore, key: str) -> bool:
    """Claim ``key`` (an answer's id, against replays) in the store, on every server process:
    True for the first claim only (first write wins)."""
    nonce = uuid.uuid4().hex
    await store.remember(key, {"nonce": nonce, "at": time.time()})
    seen = await store.recall(key)
    return seen is not None and seen.get("nonce") == nonce


def quorum_progress(request: ChannelRequest) -> str | None:
    """ "1 of 2 approvals so far." for a call that needs several approvals, else None."""
    if not isinstance(request, FunctionCall) or request.spec.policy is None:
        return None
    required = request.spec.policy.approvals_required
    if required <= 1:
        return None
    have = len(request.status.approvals or []) if request.status else 0
    return f"{have} of {required} approvals so far."


async def needs_confirmation(service: ApprovalService, request: ChannelRequest) -> bool:
    """Whether Approve takes the deliberate second step (the agent's mark or the operator's)."""
    if not isinstance(request, FunctionCall):
        return False
    if request.spec.irreversible:
        return True
    project = await service.get_project(FUNCTION_CALL, request.call_id)
    return project is not None and await service.irreversible(request, project)


@runtime_checkable
class Channel(Protocol):
    name: str
    """``"slack"``, ``"email"``: used as ``via`` in audit entries and decisions."""

    def handles(self, target: ContactChannel) -> bool:
        """True when this channel can deliver to ``target`` (e.g. ``target.slack is not None``)."""
        ...

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        """Send the request to ``target``. Raise on failure (the dispatcher audits the error and
        retries with backoff). On success call ``dispatcher.save_delivery(call_id, name, data)``
        with whatever :meth:`update` will need (Slack channel and ts, email Message-ID); that
        call also records the ``delivered`` audit entry, so do not record a second one."""
        ...

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """The request was decided (approved, rejected, answered or expired): show who decided
        what wherever it was delivered. ``deliveries`` are this channel's saved ``data`` dicts."""
        ...

    def router(self) -> APIRouter | None:
        """Inbound endpoints (Slack interactions, email replies and links), or None."""
        ...


async def start_channel(channel: Channel) -> None:
    """Optional hook: a channel may define ``async start()`` (e.g. a Socket Mode connection)."""
    start = getattr(channel, "start", None)
    if start is not None:
        await start()


async def stop_channel(channel: Channel) -> None:
    stop = getattr(channel, "stop", None)
    if stop is not None:
        await stop()
