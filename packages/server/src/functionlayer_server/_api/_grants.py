"""Grants in the API: persons only (an approver token); an agent token never makes, sees or
revokes one. Who may grant what is the service's rule (``_grants``), never decided here."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from ._deps import Granting, Service
from ._wire import CallId, json_object, plain

__all__ = ["router"]

router = APIRouter(tags=["grants"])


@router.post(
    "/function_calls/{call_id}/grants",
    summary="As a person who may decide this call: also approve future calls like it "
    "(scope, agents, lifetime_seconds, max_uses), where the operator's policy allows it",
)
async def create_grant(
    call_id: CallId, request: Request, granter: Granting, service: Service
) -> Response:
    body = await json_object(request)
    grant = await service.create_grant(
        call_id, body, person_name=granter.person.name, project=granter.client.project, via="api"
    )
    return plain(grant.to_json(service.clock.now()))


@router.get("/grants", summary="Your grants (all=true: every grant, admins)")
async def list_grants(granter: Granting, service: Service, all: bool = False) -> Response:
    grants = await service.list_grants(granter.person, project=granter.client.project, every=all)
    now = service.clock.now()
    return plain({"items": [g.to_json(now) for g in grants]})


@router.post(
    "/grants/{grant_id}/revoke", summary="Revoke a grant at once (yours, or any as an admin)"
)
async def revoke_grant(
    grant_id: Annotated[str, Path(min_length=1, max_length=64)],
    granter: Granting,
    service: Service,
) -> Response:
    grant = await service.revoke_grant(
        grant_id, granter.person, via="api", project=granter.client.project
    )
    return plain(grant.to_json(service.clock.now()))
