"""The web inbox: server-rendered pages where humans answer approval requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

__all__ = ["create_inbox_router"]


def create_inbox_router(service: Any, settings: Any) -> APIRouter:
    """Return the inbox router (pages under ``/inbox``)."""
    router = APIRouter()

    @router.get("/inbox", include_in_schema=False)
    async def inbox_placeholder() -> PlainTextResponse:
        return PlainTextResponse("FunctionLayer inbox")

    return router
