"""Function calls in the API: the shared request routes (``_requests``), the audit trail of a
call, and deciding one with an approver token (or giving it up with the agent's)."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.models import FunctionCallStatus
from pydantic import BaseModel

from functionlayer_server._audit_view import visible_entry
from functionlayer_server._service import FUNCTION_CALL

from . import _executions
from ._deps import CurrentClient, Service, client, person_of, service_of
from ._requests import CALLS, add_abandon_route, add_request_routes, give_up, kind_route
from ._wire import (
    CallId,
    call_id_of,
    fast_path,
    model_response,
    parse_body,
    record_response,
)

__all__ = ["AuditEntryModel", "AuditList", "router"]


class AuditEntryModel(BaseModel):
    call_id: str
    kind: str
    at: str
    who: str
    via: str
    action: str
    details: dict[str, Any]


class AuditList(BaseModel):
    items: list[AuditEntryModel]


router = APIRouter()
add_request_routes(router, CALLS)


@router.get(
    "/function_calls/{call_id}/audit",
    response_model=AuditList,
    tags=["function calls"],
    summary="Who did what to this call, oldest first",
)
async def function_call_audit(call_id: CallId, who: CurrentClient, service: Service) -> Response:
    await service.get_function_call(call_id, project=who.project)
    entries = await service.audit_trail(call_id, project=who.project)
    items = [
        AuditEntryModel(**visible_entry(e, agent=who.is_agent))
        for e in entries
        if e.kind == FUNCTION_CALL
    ]
    return model_response(AuditList(items=items))


# Claiming and reporting the execution: its own resource, documented here in the call's order.
router.include_router(_executions.router)


@kind_route(
    router, CALLS, "respond", "/agent/function_calls/{call_id}/respond", body="FunctionCallStatus"
)
@fast_path
async def respond_function_call(request: Request) -> Response:
    who = await client(request)
    call_id = call_id_of(request)
    # Strict: "approved" must be a JSON boolean ("yes" or 1 is not an approval).
    decision = await parse_body(request, FunctionCallStatus, strict=True)
    service = service_of(request)
    if decision.expired:
        # Giving up is always a fail-closed rejection, whatever else the body says.
        reason = (decision.comment or "").strip() or "The agent stopped waiting for a decision."
        return await give_up(request, CALLS, who, call_id, reason)
    decided = await service.decide_function_call(
        call_id, decision, responder=person_of(who), via="api", project=who.project
    )
    return record_response(decided)


add_abandon_route(router, CALLS)
