"""What every channel holds and does the same way: the service, the settings and its delivery
record, the deliveries of a request, and rewriting each delivered message.

A channel subclasses :class:`ChannelCore`, names itself (``name``) and sets up its own parts in
:meth:`ChannelCore.prepare`; what differs between channels (how a message is built and sent)
stays in the channel's module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.models import ContactChannel

from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
    needs_confirmation,
    quorum_progress,
)
from functionlayer_server._channels._planning import request_kind
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["ChannelCore", "MessageChannel", "Offer", "rewrite_each"]

Body = TypeVar("Body")


class ChannelCore:
    """The state every channel shares; ``name`` is its ``via``."""

    name: str

    def __init__(
        self, service: ApprovalService, settings: Settings, deliveries: DeliveryStore
    ) -> None:
        self.service = service
        self.settings = settings
        self.deliveries = deliveries
        self.prepare()

    def prepare(self) -> None:
        """The channel's own parts (clients, keys, caches), set up once the state is there."""

    def handles(self, target: ContactChannel) -> bool:
        """True when ``target`` names this channel (its field of the same name is set)."""
        return getattr(target, self.name, None) is not None

    async def deliveries_of(self, request: ChannelRequest) -> list[dict[str, Any]]:
        """This channel's saved deliveries of ``request``."""
        return await self.deliveries.load_deliveries(
            request.call_id, channel=self.name, kind=request_kind(request)
        )


class Offer(TypedDict):
    """What an open request's message offers besides the request (the renderers' keywords)."""

    progress: str | None
    """Quorum progress ("1 of 2 approvals so far."), if several approvals are needed."""
    irreversible: bool
    """Approve takes a deliberate second click."""
    grant: bool
    """The message offers "Approve and allow similar…"."""


class MessageChannel(ChannelCore):
    """A chat channel: its messages are rewritten once the request is decided, and its answers
    arrive on one signed POST endpoint (``inbound_path``, handled by :meth:`receive`)."""

    inbound_path: str

    async def rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None:
        """Rebuild every delivered message: the decided one, or the open request again."""
        raise NotImplementedError

    async def grant_offered(self, request: ChannelRequest) -> bool:
        """Whether the channel's message offers "Approve and allow similar…" for ``request``."""
        return False

    async def offer(self, request: ChannelRequest) -> Offer:
        """What the message of the open ``request`` offers now."""
        return Offer(
            progress=quorum_progress(request),
            irreversible=await needs_confirmation(self.service, request),
            grant=await self.grant_offered(request),
        )

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """Replace every delivered message by one showing who decided what, without buttons."""
        await self.rewrite(request, deliveries, decided=True)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(
            self.inbound_path, self.receive, methods=["POST"], include_in_schema=False
        )
        return router

    async def receive(self, request: Request) -> Response:
        """An answer from the platform; nothing in it is trusted before it is verified."""
        raise NotImplementedError


async def rewrite_each(
    deliveries: list[dict[str, Any]],
    build: Callable[[dict[str, Any]], Awaitable[Body | None]],
    send: Callable[[dict[str, Any], Body], Awaitable[None]],
    errors: tuple[type[Exception], ...],
) -> None:
    """Rewrite every delivered message: ``build`` its new body (None leaves it alone), then
    ``send`` it. A failed send (one of ``errors``) does not stop the others; all failures are
    raised together at the end, as one ``RuntimeError``, so the dispatcher retries."""
    failures: list[str] = []
    for delivery in deliveries:
        body = await build(delivery)
        if body is None:
            continue
        try:
            await send(delivery, body)
        except errors as exc:
            failures.append(str(exc))
    if failures:
        raise RuntimeError("; ".join(failures))
