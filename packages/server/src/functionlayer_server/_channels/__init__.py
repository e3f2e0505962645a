"""Contact channels: deliver requests to Slack, email, Discord, ... and collect the answers there.

``install_channels(app, service, settings)`` builds the channels the settings enable, registers
the :class:`Dispatcher` (routing, escalation, delivery records) with the service, mounts each
channel's inbound endpoints and the audit export, and starts/stops channels with the app.

A channel module ``_channels/_<name>.py`` exposes
``create_channel(service, settings, deliveries) -> Channel | None`` (None when not configured).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from functionlayer_server._channels._audit import audit_lines, create_audit_router
from functionlayer_server._channels._base import Channel, DeliveryStore, start_channel, stop_channel
from functionlayer_server._channels._dispatch import Dispatcher
from functionlayer_server._channels._planning import delivery_tiers
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings

__all__ = [
    "Channel",
    "DeliveryStore",
    "Dispatcher",
    "audit_lines",
    "build_dispatcher",
    "delivery_tiers",
    "install_channels",
]

log = logging.getLogger("functionlayer_server.channels")

CHANNEL_MODULES = ("_slack", "_email", "_discord", "_teams")


def build_dispatcher(service: ApprovalService, settings: Settings) -> Dispatcher:
    """A dispatcher with every channel the settings enable, registered with the service."""
    dispatcher = Dispatcher(service)
    for module_name in CHANNEL_MODULES:
        qualified = f"{__name__}.{module_name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                continue  # that channel is not part of this build
            raise
        channel = module.create_channel(service, settings, dispatcher)
        if channel is not None:
            dispatcher.add_channel(channel)
    dispatcher.install()
    return dispatcher


def install_channels(app: FastAPI, service: ApprovalService, settings: Settings) -> Dispatcher:
    dispatcher = build_dispatcher(service, settings)
    app.state.channels = dispatcher
    for channel in dispatcher.channels:
        router = channel.router()
        if router is not None:
            app.include_router(router)
    app.include_router(create_audit_router(service))

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            started: list[Channel] = []
            try:
                for channel in dispatcher.channels:
                    await start_channel(channel)
                    started.append(channel)
                yield state
            finally:
                for channel in reversed(started):
                    try:
                        await stop_channel(channel)
                    except Exception:
                        log.exception("stopping channel %s failed", channel.name)

    app.router.lifespan_context = lifespan
    return dispatcher
