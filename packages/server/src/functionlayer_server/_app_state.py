"""What the HTTP surfaces read from the app: the service and the settings that
``_app.create_app`` puts in ``app.state``, as typed FastAPI dependencies (``Service``,
``Config``) and as plain functions for the endpoints that take only the request."""

# No "from __future__ import annotations": FastAPI must resolve the Annotated aliases.

from typing import Annotated

from fastapi import Depends, Request

from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["Config", "Service", "service_of", "settings_of"]


def service_of(request: Request) -> ApprovalService:
    service: ApprovalService = request.app.state.service
    return service


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Service = Annotated[ApprovalService, Depends(service_of)]
Config = Annotated[Settings, Depends(settings_of)]
