"""The agent API of the open protocol (docs/protocol.md), mounted under ``/functionlayer/v1``
and, for the predecessor's clients, ``/humanlayer/v1``.

One router per resource (``_calls`` with ``_executions``, ``_contacts``, ``_grants``; what calls
and contacts share is one factory in ``_requests``); who is calling is a dependency
(``_deps``); the hot endpoints parse their inputs by hand (``_wire``)."""

from fastapi import APIRouter, FastAPI

from functionlayer_server._quotas import LongPollQuota
from functionlayer_server._settings import Settings

from . import _calls, _contacts, _grants
from ._wire import ERRORS, fast_path, is_fast_path

__all__ = [
    "API_PREFIX",
    "LEGACY_PREFIX",
    "create_api_router",
    "fast_path",
    "install_api",
    "is_fast_path",
]

API_PREFIX = "/functionlayer/v1"
LEGACY_PREFIX = "/humanlayer/v1"


def create_api_router() -> APIRouter:
    """Every route of the API, relative to its prefix."""
    router = APIRouter(responses=ERRORS)
    for resource in (_calls, _contacts, _grants):
        router.include_router(resource.router)
    return router


def install_api(app: FastAPI, settings: Settings) -> APIRouter:
    """Mount the API under both prefixes (the legacy one left out of the OpenAPI document)
    and give it its per-process state (the long-poll quota); returns the router."""
    app.state.long_polls = LongPollQuota(settings.max_long_polls_per_token)
    api = create_api_router()
    app.include_router(api, prefix=API_PREFIX)
    app.include_router(api, prefix=LEGACY_PREFIX, include_in_schema=False)
    return api
