"""The one execution an approved call authorises: claim it (also in the same round trip as
waiting for the decision) and report how it ended. Agent tokens only; the creating token
only (the service checks)."""

from collections.abc import Awaitable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.models import (
    ClaimedCall,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
)

from functionlayer_server._auth import ApiClient
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._store import RequestRecord

from ._deps import agent, service_of, settings_of
from ._waiting import waited
from ._wire import (
    call_id_of,
    documented,
    fast_path,
    model_response,
    parse_body,
    wait_seconds,
)

__all__ = ["router"]

router = APIRouter(tags=["function calls"])

M = TypeVar("M", Execution, ExecutionReport)


async def _creator_sends(request: Request, body: type[M]) -> tuple[ApiClient, str, M]:
    """The agent token, the call id and the body of a request about a call's execution
    (only the call's creator may claim or report: the service checks)."""
    who = await agent(request)
    call_id = call_id_of(request)
    return who, call_id, await parse_body(request, body)


def _claim(
    service: ApprovalService,
    call_id: str,
    claim: Execution,
    who: ApiClient,
    current: RequestRecord | None = None,
) -> Awaitable[ExecutionClaim]:
    return service.claim_execution(
        call_id,
        claim,
        project=who.project,
        actor=f"agent:{who.token_name}",
        creator=who.token_id,
        current=current,
    )


@router.post(
    "/function_calls/{call_id}/execution",
    response_model=ExecutionClaim,
    summary="Claim the one execution an approved call authorises (granted to the first "
    "claim only; a retry with the same claim_id is the same claim)",
    openapi_extra=documented(call_id=True, body="Execution"),
)
@fast_path
async def claim_execution(request: Request) -> Response:
    who, call_id, claim = await _creator_sends(request, Execution)
    return model_response(await _claim(service_of(request), call_id, claim, who))


@router.post(
    "/function_calls/{call_id}/claim_when_approved",
    response_model=ClaimedCall,
    summary="Wait for the decision (with ?wait=S) and, if the call is approved as proposed, "
    "claim its one execution in the same round trip (same rules as /execution)",
    openapi_extra=documented(call_id=True, wait=True, body="Execution"),
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
    # The record the wait just read is the claim's first compare-and-set base: no second
    # read between the decision and the body (the decorator's resume latency).
    granted = await _claim(service, call_id, claim, who, record)
    return model_response(ClaimedCall(call=call, claim=granted))


@router.post(
    "/function_calls/{call_id}/execution/outcome",
    response_model=FunctionCall,
    summary="Report how the claimed execution ended (returned or raised, with a summary)",
    openapi_extra=documented(call_id=True, body="ExecutionReport"),
)
@fast_path
async def report_execution(request: Request) -> Response:
    who, call_id, report = await _creator_sends(request, ExecutionReport)
    call = await service_of(request).report_execution(
        call_id, report, project=who.project, actor=f"agent:{who.token_name}", creator=who.token_id
    )
    return model_response(call)
