"""The agent API of the open protocol (docs/protocol.md), mounted under ``/functionlayer/v1``
and, for the predecessor's clients, ``/humanlayer/v1``."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from functionlayer.models import (
    ClaimedCall,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
)
from pydantic import BaseModel, ValidationError

from functionlayer_server._audit_view import visible_entry
from functionlayer_server._auth import ApiClient
from functionlayer_server._errors import (
    AlreadyDecidedError,
    AuthenticationError,
    ForbiddenError,
    InvalidRequestError,
)
from functionlayer_server._quotas import LongPollQuota
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService
from functionlayer_server._settings import Settings
from functionlayer_server._store import RequestRecord

__all__ = ["API_PREFIX", "LEGACY_PREFIX", "create_api_router", "fast_path", "is_fast_path"]

API_PREFIX = "/functionlayer/v1"
LEGACY_PREFIX = "/humanlayer/v1"


class FunctionCallList(BaseModel):
    items: list[FunctionCall]


class HumanContactList(BaseModel):
    items: list[HumanContact]


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


class ErrorBody(BaseModel):
    detail: str
    code: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed JSON",
        401: "Missing, wrong or revoked API token",
        403: "This token may not do that (agent tokens cannot decide; a person the policy "
        "does not allow)",
        404: "No such request for this token's project",
        409: "Conflict: already decided or expired, another request under this call id, or "
        "an execution claim on a call that is not approved",
        413: "Request body over the server's limit",
        429: "Over a quota of this token (pending requests, open long-polls): nothing was "
        "stored; retry after Retry-After seconds",
        422: "Wrong types, an invalid decision, or routing outside the operator's rules",
    }.items()
}

CallId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The request's call id",
    ),
]


def _json(model: BaseModel) -> Response:
    return Response(content=model.model_dump_json(), media_type="application/json")


def _record(record: RequestRecord) -> Response:
    """A stored request as the protocol's JSON, straight from its stored text (no model round
    trip on the hot paths)."""
    return Response(content=record.to_json(), media_type="application/json")


# The hot endpoints (create, get/long-poll, respond) parse their inputs by hand: FastAPI's
# parameter and body machinery cost more CPU than the whole request otherwise. The OpenAPI
# document still describes them (``openapi_extra``), and errors keep the same JSON shape.

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Awaitable[Response]])


def fast_path(endpoint: F) -> F:
    """Mark an endpoint that takes only the request: ``_app.FastPathMiddleware`` calls it
    directly, bypassing FastAPI's routing and dependency layers."""
    endpoint._fl_fast_path = True  # type: ignore[attr-defined]
    return endpoint


def is_fast_path(endpoint: Any) -> bool:
    return bool(getattr(endpoint, "_fl_fast_path", False))


_CALL_ID_PARAM = {
    "name": "call_id",
    "in": "path",
    "required": True,
    "description": "The request's call id",
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
}
_WAIT_PARAM = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Long-poll: hold the request up to this many seconds (capped at 60) until "
    "the request is decided",
    "schema": {"type": "number", "minimum": 0},
}


def _body_doc(model: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
    }


def _invalid(loc: tuple[str, ...], msg: str, kind: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": kind, "input": value}])


async def _parse_body(request: Request, model: type[M], *, strict: bool = False) -> M:
    raw = await request.body()
    try:
        return model.model_validate_json(raw, strict=strict or None)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(errors) from None


def _call_id(request: Request) -> str:
    call_id = str(request.path_params["call_id"])
    if not 1 <= len(call_id) <= 256 or not call_id.isprintable():
        raise _invalid(
            ("path", "call_id"),
            "call_id must be 1-256 printable characters",
            "string_pattern_mismatch",
            call_id,
        )
    return call_id


def _run_id_filter(run_id: str | None) -> str | None:
    if run_id is not None and not (0 < len(run_id) <= 256 and run_id.isprintable()):
        raise _invalid(
            ("query", "run_id"),
            "run_id must be 1-256 printable characters",
            "string_pattern_mismatch",
            run_id,
        )
    return run_id


def _wait_seconds(request: Request, cap: float) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(
            ("query", "wait"), "Input should be a valid number", "float_parsing", raw
        ) from None
    if not math.isfinite(value) or value < 0:
        raise _invalid(
            ("query", "wait"), "wait must be a finite number >= 0", "greater_than_equal", raw
        )
    return min(value, cap)


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body of a GET is already read, so
    the next ASGI message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def create_api_router(service: ApprovalService, settings: Settings) -> APIRouter:
    async def client(request: Request) -> ApiClient:
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
        found = await service.authenticate_token(token)
        if found is None:
            raise AuthenticationError("unknown API token")
        return found

    async def agent(request: Request) -> ApiClient:
        who = await client(request)
        if not who.is_agent:
            raise ForbiddenError(
                "approver tokens decide; they cannot create requests (use an agent token)"
            )
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

    def scope(who: ApiClient) -> str:
        # Every token belongs to one project; an approver token decides there only if its
        # person is a member (the policy checks).
        return who.project

    Client = Annotated[ApiClient, Depends(client)]
    cap = settings.long_poll_max_seconds
    long_polls = LongPollQuota(settings.max_long_polls_per_token)

    async def waited(
        request: Request, who: ApiClient, kind: str, call_id: str, wait: float
    ) -> RequestRecord | None:
        """The request now (no ``wait``), or a long-poll counted against the token's quota
        and ended early when the client goes away (``None``: its connection is not held for
        nothing)."""
        if wait <= 0:
            return await service.wait_record(
                kind, call_id, 0.0, project=scope(who), agent=who.is_agent
            )
        with long_polls.holding(who.project, who.token_id, who.token_name):
            waiting = asyncio.ensure_future(
                service.wait_record(kind, call_id, wait, project=scope(who), agent=who.is_agent)
            )
            gone = asyncio.ensure_future(_disconnected(request))
            try:
                await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when this handler itself is cancelled
                for task in (waiting, gone):
                    task.cancel()
            if not waiting.done() or waiting.cancelled():
                # The client went away: nobody reads the answer (and the inbox says so).
                if who.is_agent:
                    service.agent_left(scope(who), kind, call_id)
                return None
            return waiting.result()

    async def held(
        request: Request, who: ApiClient, kind: str, call_id: str, wait: float
    ) -> Response:
        record = await waited(request, who, kind, call_id, wait)
        if record is None:  # the client went away: nobody reads the answer
            return Response(status_code=499)
        return _record(record)

    router = APIRouter(responses=_ERRORS)

    # -- function calls ---------------------------------------------------------------------

    @router.post(
        "/function_calls",
        response_model=FunctionCall,
        tags=["function calls"],
        summary="Ask for approval of a function call (idempotent per call_id)",
        openapi_extra={"requestBody": _body_doc("FunctionCall")},
    )
    @fast_path
    async def create_function_call(request: Request) -> Response:
        who = await agent(request)
        call = await _parse_body(request, FunctionCall)
        stored, _ = await service.create_record(
            FUNCTION_CALL,
            call,
            project=who.project,
            actor=f"agent:{who.token_name}",
            via="api",
            created_by=who.token_name,
            created_by_token=who.token_id,
        )
        return _record(stored)

    @router.get(
        "/function_calls",
        response_model=FunctionCallList,
        tags=["function calls"],
        summary="List this project's function calls, newest first",
    )
    async def list_function_calls(
        who: Client,
        pending: bool | None = None,
        run_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> Response:
        items = await service.list_function_calls(
            pending=pending, project=who.project, run_id=_run_id_filter(run_id), limit=limit
        )
        return _json(FunctionCallList(items=items))

    @router.get(
        "/function_calls/{call_id}",
        response_model=FunctionCall,
        tags=["function calls"],
        summary="Get a function call; with ?wait=S, wait until it is decided",
        openapi_extra={"parameters": [_CALL_ID_PARAM, _WAIT_PARAM]},
    )
    @fast_path
    async def get_function_call(request: Request) -> Response:
        who = await client(request)
        call_id, wait = _call_id(request), _wait_seconds(request, cap)
        return await held(request, who, FUNCTION_CALL, call_id, wait)

    @router.get(
        "/function_calls/{call_id}/audit",
        response_model=AuditList,
        tags=["function calls"],
        summary="Who did what to this call, oldest first",
    )
    async def function_call_audit(call_id: CallId, who: Client) -> Response:
        await service.get_function_call(call_id, project=who.project)
        entries = await service.audit_trail(call_id, project=who.project)
        items = [
            AuditEntryModel(**visible_entry(e, agent=who.is_agent))
            for e in entries
            if e.kind == FUNCTION_CALL
        ]
        return _json(AuditList(items=items))

    @router.post(
        "/function_calls/{call_id}/execution",
        response_model=ExecutionClaim,
        tags=["function calls"],
        summary="Claim the one execution an approved call authorises (granted to the first "
        "claim only; a retry with the same claim_id is the same claim)",
        openapi_extra={"parameters": [_CALL_ID_PARAM], "requestBody": _body_doc("Execution")},
    )
    @fast_path
    async def claim_execution(request: Request) -> Response:
        who = await agent(request)
        call_id = _call_id(request)
        claim = await _parse_body(request, Execution)
        granted = await service.claim_execution(
            call_id,
            claim,
            project=who.project,
            actor=f"agent:{who.token_name}",
            creator=who.token_id,
        )
        return _json(granted)

    @router.post(
        "/function_calls/{call_id}/claim_when_approved",
        response_model=ClaimedCall,
        tags=["function calls"],
        summary="Wait for the decision (with ?wait=S) and, if the call is approved as proposed, "
        "claim its one execution in the same round trip (same rules as /execution)",
        openapi_extra={
            "parameters": [_CALL_ID_PARAM, _WAIT_PARAM],
            "requestBody": _body_doc("Execution"),
        },
    )
    @fast_path
    async def claim_when_approved(request: Request) -> Response:
        who = await agent(request)
        call_id, wait = _call_id(request), _wait_seconds(request, cap)
        claim = await _parse_body(request, Execution)
        # Only the creator may claim: refused before the connection is held for nothing.
        await service.check_creator(
            FUNCTION_CALL, call_id, project=who.project, creator=who.token_id
        )
        record = await waited(request, who, FUNCTION_CALL, call_id, wait)
        if record is None:  # gone before the decision: nothing claimed
            return Response(status_code=499)
        call = service.call_from_record(record)
        status = call.status
        if status is None or status.approved is not True or status.edited_kwargs is not None:
            return _json(ClaimedCall(call=call))
        granted = await service.claim_execution(
            call_id,
            claim,
            project=who.project,
            actor=f"agent:{who.token_name}",
            creator=who.token_id,
        )
        return _json(ClaimedCall(call=call, claim=granted))

    @router.post(
        "/function_calls/{call_id}/execution/outcome",
        response_model=FunctionCall,
        tags=["function calls"],
        summary="Report how the claimed execution ended (returned or raised, with a summary)",
        openapi_extra={
            "parameters": [_CALL_ID_PARAM],
            "requestBody": _body_doc("ExecutionReport"),
        },
    )
    @fast_path
    async def report_execution(request: Request) -> Response:
        who = await agent(request)
        call_id = _call_id(request)
        report = await _parse_body(request, ExecutionReport)
        call = await service.report_execution(
            call_id,
            report,
            project=who.project,
            actor=f"agent:{who.token_name}",
            creator=who.token_id,
        )
        return _json(call)

    @router.post(
        "/agent/function_calls/{call_id}/respond",
        response_model=FunctionCall,
        tags=["function calls"],
        summary="Decide a function call (approve, reject with comment, edit, respond instead; "
        "expired=true gives up on it)",
        openapi_extra={
            "parameters": [_CALL_ID_PARAM],
            "requestBody": _body_doc("FunctionCallStatus"),
        },
    )
    @fast_path
    async def respond_function_call(request: Request) -> Response:
        who = await client(request)
        call_id = _call_id(request)
        # Strict: "approved" must be a JSON boolean ("yes" or 1 is not an approval).
        decision = await _parse_body(request, FunctionCallStatus, strict=True)
        if decision.expired:
            if not who.is_agent:
                raise ForbiddenError("giving up a request is for the agent that created it")
            # Giving up is always a fail-closed rejection, whatever else the body says.
            reason = (decision.comment or "").strip() or "The agent stopped waiting for a decision."
            if not await service.give_up(FUNCTION_CALL, call_id, who, reason):
                raise AlreadyDecidedError(f"function call {call_id!r} is already decided")
            return _json(await service.get_function_call(call_id, project=who.project))
        decided = await service.decide_function_call(
            call_id, decision, responder=person_of(who), via="api", project=scope(who)
        )
        return _record(decided)

    def abandoning(who: ApiClient) -> ApiClient:
        if not who.is_agent:
            raise ForbiddenError("abandoning a request is for the agent token that created it")
        return who

    @router.post(
        "/function_calls/{call_id}/abandon",
        response_model=FunctionCall,
        tags=["function calls"],
        summary="The agent stopped waiting (e.g. Ctrl-C): the pending call is expired for good "
        "and marked abandoned (the creating token only; never un-decides)",
        openapi_extra={"parameters": [_CALL_ID_PARAM]},
    )
    @fast_path
    async def abandon_function_call(request: Request) -> Response:
        who = abandoning(await client(request))
        return _record(await service.abandon(FUNCTION_CALL, _call_id(request), who))

    # -- human contacts ---------------------------------------------------------------------

    @router.post(
        "/contact_requests",
        response_model=HumanContact,
        tags=["human contacts"],
        summary="Ask a human a question (idempotent per call_id)",
        openapi_extra={"requestBody": _body_doc("HumanContact")},
    )
    @fast_path
    async def create_human_contact(request: Request) -> Response:
        who = await agent(request)
        contact = await _parse_body(request, HumanContact)
        stored, _ = await service.create_record(
            HUMAN_CONTACT,
            contact,
            project=who.project,
            actor=f"agent:{who.token_name}",
            via="api",
            created_by=who.token_name,
            created_by_token=who.token_id,
        )
        return _record(stored)

    @router.get(
        "/contact_requests",
        response_model=HumanContactList,
        tags=["human contacts"],
        summary="List this project's human contacts, newest first",
    )
    async def list_human_contacts(
        who: Client,
        pending: bool | None = None,
        run_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> Response:
        items = await service.list_human_contacts(
            pending=pending, project=who.project, run_id=_run_id_filter(run_id), limit=limit
        )
        return _json(HumanContactList(items=items))

    @router.get(
        "/contact_requests/{call_id}",
        response_model=HumanContact,
        tags=["human contacts"],
        summary="Get a human contact; with ?wait=S, wait until it is answered",
        openapi_extra={"parameters": [_CALL_ID_PARAM, _WAIT_PARAM]},
    )
    @fast_path
    async def get_human_contact(request: Request) -> Response:
        who = await client(request)
        call_id, wait = _call_id(request), _wait_seconds(request, cap)
        return await held(request, who, HUMAN_CONTACT, call_id, wait)

    @router.post(
        "/agent/human_contacts/{call_id}/respond",
        response_model=HumanContact,
        tags=["human contacts"],
        summary="Answer a human contact (expired=true gives up on it)",
        openapi_extra={
            "parameters": [_CALL_ID_PARAM],
            "requestBody": _body_doc("HumanContactStatus"),
        },
    )
    @fast_path
    async def respond_human_contact(request: Request) -> Response:
        who = await client(request)
        call_id = _call_id(request)
        answer = await _parse_body(request, HumanContactStatus, strict=True)
        if answer.expired and answer.response is None:
            if not who.is_agent:
                raise ForbiddenError("giving up a request is for the agent that created it")
            if not await service.give_up(
                HUMAN_CONTACT, call_id, who, "The agent stopped waiting for an answer."
            ):
                raise AlreadyDecidedError(f"human contact {call_id!r} is already answered")
            return _json(await service.get_human_contact(call_id, project=who.project))
        contact = await service.respond_human_contact(
            call_id,
            response=answer.response,
            response_option_name=answer.response_option_name,
            responder=person_of(who),
            via="api",
            project=scope(who),
        )
        return _json(contact)

    @router.post(
        "/contact_requests/{call_id}/abandon",
        response_model=HumanContact,
        tags=["human contacts"],
        summary="The agent stopped waiting: the pending contact is expired for good and marked "
        "abandoned (the creating token only)",
        openapi_extra={"parameters": [_CALL_ID_PARAM]},
    )
    @fast_path
    async def abandon_human_contact(request: Request) -> Response:
        who = abandoning(await client(request))
        return _record(await service.abandon(HUMAN_CONTACT, _call_id(request), who))

    # -- grants (persons only: an agent token never makes, sees or revokes one) ---------------

    async def granting_person(request: Request) -> tuple[ApiClient, Any]:
        who = await client(request)
        if who.is_agent or not who.approver:
            raise ForbiddenError(
                "agent tokens cannot make, list or revoke grants: only a person may (the inbox, "
                "or an approver token made with 'functionlayer-server tokens create NAME "
                "--approver USER')"
            )
        person = await service.get_person(who.approver)
        if person is None or not person.active:
            raise ForbiddenError(f"{who.approver} is not an active person of the directory")
        return who, person

    @router.post(
        "/function_calls/{call_id}/grants",
        tags=["grants"],
        summary="As a person who may decide this call: also approve future calls like it "
        "(scope, agents, lifetime_seconds, max_uses), where the operator's policy allows it",
    )
    async def create_grant(call_id: CallId, request: Request) -> Response:
        who, person = await granting_person(request)
        body = await _json_object(request)
        grant = await service.create_grant(
            call_id, body, person_name=person.name, project=scope(who), via="api"
        )
        return _plain(grant.to_json(service.clock.now()))

    @router.get("/grants", tags=["grants"], summary="Your grants (all=true: every grant, admins)")
    async def list_grants(request: Request, all: bool = False) -> Response:
        who, person = await granting_person(request)
        grants = await service.list_grants(person, project=scope(who), every=all)
        now = service.clock.now()
        return _plain({"items": [g.to_json(now) for g in grants]})

    @router.post(
        "/grants/{grant_id}/revoke",
        tags=["grants"],
        summary="Revoke a grant at once (yours, or any as an admin)",
    )
    async def revoke_grant(
        grant_id: Annotated[str, Path(min_length=1, max_length=64)], request: Request
    ) -> Response:
        who, person = await granting_person(request)
        grant = await service.revoke_grant(grant_id, person, via="api", project=scope(who))
        return _plain(grant.to_json(service.clock.now()))

    return router


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidRequestError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return body


def _plain(data: Any) -> Response:
    return Response(content=json.dumps(data), media_type="application/json")
