"""Who is calling the agent API, and what the endpoints read from the app: FastAPI
dependencies (``CurrentClient``, ``Granting``, ``Service``) and the same functions called directly
by the fast-path endpoints, which take only the request (see ``_wire.fast_path``).

Every endpoint of the API authenticates its caller through :func:`client` (an API token); the
service and the settings come from ``_app_state``, the long-poll quota from
``request.app.state`` (set by ``install_api``)."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from functionlayer_server._app_state import Service, service_of, settings_of
from functionlayer_server._auth import ApiClient
from functionlayer_server._errors import AuthenticationError, ForbiddenError
from functionlayer_server._policy import Person
from functionlayer_server._quotas import LongPollQuota

__all__ = [
    "CurrentClient",
    "Granter",
    "Granting",
    "Service",
    "abandoning",
    "agent",
    "client",
    "granting_person",
    "long_polls_of",
    "person_of",
    "service_of",
    "settings_of",
]


def long_polls_of(request: Request) -> LongPollQuota:
    quota: LongPollQuota = request.app.state.long_polls
    return quota


async def client(request: Request) -> ApiClient:
    """The API token's client, or 401."""
    # Read the header straight from the request: FastAPI's Header() parameter machinery
    # costs more than the whole token check on this hot path.
    authorization = request.headers.get("authorization")
    if not authorization:
        raise AuthenticationError(
            "missing Authorization header: send 'Authorization: Bearer <token>'"
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    found = await service_of(request).authenticate_token(token)
    if found is None:
        raise AuthenticationError("unknown API token")
    return found


async def agent(request: Request) -> ApiClient:
    """An agent token's client (creating and claiming), or 401/403."""
    who = await client(request)
    if not who.is_agent:
        raise ForbiddenError(
            "approver tokens decide; they cannot create requests (use an agent token)"
        )
    return who


def abandoning(who: ApiClient) -> ApiClient:
    if not who.is_agent:
        raise ForbiddenError("abandoning a request is for the agent token that created it")
    return who


def person_of(who: ApiClient) -> str:
    """The identity a decision through the API is made as: the approver token's person.
    Agent tokens never decide, whatever the body says (responded_by is ignored)."""
    if who.is_agent or not who.approver:
        raise ForbiddenError(
            "agent tokens cannot decide: approving, rejecting, editing or answering takes a "
            "person (the inbox, Slack, email, or an approver token made with "
            "'functionlayer-server tokens create NAME --approver USER')"
        )
    return f"user:{who.approver}"


@dataclass(frozen=True)
class Granter:
    """An approver token and the active person it acts as (grants are for persons only)."""

    client: ApiClient
    person: Person


async def granting_person(request: Request) -> Granter:
    """The person behind an approver token, or 401/403: an agent token never makes, sees or
    revokes a grant."""
    who = await client(request)
    if who.is_agent or not who.approver:
        raise ForbiddenError(
            "agent tokens cannot make, list or revoke grants: only a person may (the inbox, "
            "or an approver token made with 'functionlayer-server tokens create NAME "
            "--approver USER')"
        )
    person = await service_of(request).get_person(who.approver)
    if person is None or not person.active:
        raise ForbiddenError(f"{who.approver} is not an active person of the directory")
    return Granter(who, person)


CurrentClient = Annotated[ApiClient, Depends(client)]
Granting = Annotated[Granter, Depends(granting_person)]
