"""The inbox's routes (mounted under ``/inbox``): one router per page family, each using the
dependencies of ``_deps`` (the logged-in person, the CSRF-checked form)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from . import _account, _calls, _contacts, _grant_pages, _groups, _list
from ._pages import Answer, answer_now

__all__ = ["create_inbox_router", "install_inbox"]


def create_inbox_router() -> APIRouter:
    """Every page of the inbox (left out of the OpenAPI document)."""
    router = APIRouter(include_in_schema=False)
    for pages in (_account, _list, _calls, _contacts, _groups, _grant_pages):
        router.include_router(pages.router)
    return router


def install_inbox(app: FastAPI) -> None:
    """Mount the inbox, and answer with the response its dependencies raise (the login
    redirect, a refused form)."""
    app.add_exception_handler(Answer, answer_now)
    app.include_router(create_inbox_router())
