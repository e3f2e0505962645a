"""The one execution an approved call authorises: claim it (also in the same round trip as
waiting for the decision) and report how it ended. Agent tokens only; the creating token
only (the service checks)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer._models import (
    ClaimedCall,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
)

from functionlayer_server._service import FUNCTION_CALL

from ._deps import agent, service_of, settings_of
from ._waiting import waited
from ._wire import (
    CALL_ID_PARAM,
    WAIT_PARAM,
    body_doc,
    call_id_of,
    fast_path,
    model_response,
    parse_body,
    wait_seconds,
)

__all__ = ["router"]

router = APIRouter(tags=["function calls"])


@router.post(
    "/function_calls/{call_id}/execution",
    response_model=ExecutionClaim,
    summary="Claim the one execution an approved call authorises (granted to the first "
    "claim only; a retry with the same claim_id is the same claim)",
    openapi_extra={"parameters": [CALL_ID_PARAM], "requestBody": body_doc("Execution")},
)
@fast_path
async def claim_execution(request: Request) -> Response:
    who = await agent(request)
    call_id = call_id_of(request)
    claim = await parse_body(request, Execution)
    granted = await service_of(request).claim_execution(
        call_id,
        claim,
        project=who.project,
        actor=f"agent:{who.token_name}",
        creator=who.token_id,
    )
    return model_response(granted)


@router.post(
    "/function_calls/{call_id}/claim_when_approved",
    response_model=ClaimedCall,
    summary="Wait for the decision (with ?wait=S) and, if the call is approved as proposed, "
    "claim its one execution in the same round trip (same rules as /execution)",
    openapi_extra={
        "parameters": [CALL_ID_PARAM, WAIT_PARAM],
        "requestBody": body_doc("Execution"),
    },
)
@fast_path
async def claim_when_approved(request: Request) -> Response:
    who = await agent(request)
    service = service_of(request)
    call_id = call_id_of(request)
    wait = wait_seconds(request, settings_of(request).long_poll_max_seconds)
    claim = await parse_body(request, Execution)
    # Only the creator may claim: refused before the connection is held for nothing.
    await service.check_creator(FUNCTION_CALL, call_id, project=who.project, creator=who.token_id)
    record = await waited(request, who, FUNCTION_CALL, call_id, wait)
    if record is None:  # gone before the decision: nothing claimed
        return Response(status_code=499)
    call = service.call_from_record(record)
    status = call.status
    if status is None or status.approved is not True or status.edited_kwargs is not None:
        return model_response(ClaimedCall(call=call))
    granted = await service.claim_execution(
        call_id,
        claim,
        project=who.project,
        actor=f"agent:{who.token_name}",
        creator=who.token_id,
    )
    return model_response(ClaimedCall(call=call, claim=granted))


@router.post(
    "/function_calls/{call_id}/execution/outcome",
    response_model=FunctionCall,
    summary="Report how the claimed execution ended (returned or raised, with a summary)",
    openapi_extra={
        "parameters": [CALL_ID_PARAM],
        "requestBody": body_doc("ExecutionReport"),
    },
)
@fast_path
async def report_execution(request: Request) -> Response:
    who = await agent(request)
    call_id = call_id_of(request)
    report = await parse_body(request, ExecutionReport)
    call = await service_of(request).report_execution(
        call_id,
        report,
        project=who.project,
        actor=f"agent:{who.token_name}",
        creator=who.token_id,
    )
    return model_response(call)
