"""What function calls and human contacts share in the API: create (idempotent per call id),
list, get with an optional long-poll, and abandon. One factory serves both kinds; each kind's
own routes (deciding, executions, audit) are in ``_calls``, ``_contacts`` and
``_executions``."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from functionlayer.models import FunctionCall, HumanContact
from pydantic import BaseModel

from functionlayer_server._auth import ApiClient
from functionlayer_server._errors import AlreadyDecidedError, ForbiddenError
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService

from ._deps import CurrentClient, Service, abandoning, agent, client, service_of, settings_of
from ._waiting import held
from ._wire import (
    call_id_of,
    documented,
    fast_path,
    model_response,
    parse_body,
    record_response,
    run_id_filter,
    wait_seconds,
)

__all__ = [
    "CALLS",
    "CONTACTS",
    "FunctionCallList",
    "HumanContactList",
    "RequestKind",
    "add_abandon_route",
    "add_request_routes",
    "give_up",
    "kind_route",
]


class FunctionCallList(BaseModel):
    items: list[FunctionCall]


class HumanContactList(BaseModel):
    items: list[HumanContact]


Lister = Callable[..., Awaitable[Sequence[BaseModel]]]


SUMMARIES = {
    (FUNCTION_CALL, "create"): "Ask for approval of a function call (idempotent per call_id)",
    (FUNCTION_CALL, "list"): "List this project's function calls, newest first",
    (FUNCTION_CALL, "get"): "Get a function call; with ?wait=S, wait until it is decided",
    (FUNCTION_CALL, "abandon"): "The agent stopped waiting (e.g. Ctrl-C): the pending call is "
    "expired for good and marked abandoned (the creating token only; never un-decides)",
    (FUNCTION_CALL, "respond"): "Decide a function call (approve, reject with comment, edit, "
    "respond instead; expired=true gives up on it)",
    (HUMAN_CONTACT, "create"): "Ask a human a question (idempotent per call_id)",
    (HUMAN_CONTACT, "list"): "List this project's human contacts, newest first",
    (HUMAN_CONTACT, "get"): "Get a human contact; with ?wait=S, wait until it is answered",
    (HUMAN_CONTACT, "abandon"): "The agent stopped waiting: the pending contact is expired for "
    "good and marked abandoned (the creating token only)",
    (HUMAN_CONTACT, "respond"): "Answer a human contact (expired=true gives up on it)",
}
"""Each kind's operations as the OpenAPI document summarises them."""


@dataclass(frozen=True)
class RequestKind:
    """One kind of request as the API names and documents it. ``kind`` is also the stem of
    its operations' names (``create_function_call``, ``list_human_contacts``, ...)."""

    kind: str
    path: str  # the collection, e.g. "/function_calls"
    model: type[FunctionCall] | type[HumanContact]
    listing: type[FunctionCallList] | type[HumanContactList]
    tag: str

    def lister(self, service: ApprovalService) -> Lister:
        if self.kind == FUNCTION_CALL:
            return service.list_function_calls
        return service.list_human_contacts


CALLS = RequestKind(
    FUNCTION_CALL, "/function_calls", FunctionCall, FunctionCallList, "function calls"
)
CONTACTS = RequestKind(
    HUMAN_CONTACT, "/contact_requests", HumanContact, HumanContactList, "human contacts"
)


def kind_route(
    router: APIRouter,
    of: RequestKind,
    op: str,
    path: str,
    *,
    method: str = "POST",
    call_id: bool = True,
    wait: bool = False,
    body: str | None = None,
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of one operation on one kind: its name (``create_function_call``, ...), model,
    tag and summary, and what the hand-parsed endpoint reads (documented for OpenAPI)."""
    return router.api_route(
        path,
        methods=[method],
        name=f"{op}_{of.kind}",
        response_model=of.model,
        tags=[of.tag],
        summary=SUMMARIES[of.kind, op],
        openapi_extra=documented(call_id=call_id, wait=wait, body=body),
    )


def add_request_routes(router: APIRouter, of: RequestKind) -> None:
    """Create, list and get (with ``?wait=S``) for one kind."""

    @kind_route(router, of, "create", of.path, call_id=False, body=of.model.__name__)
    @fast_path
    async def create(request: Request) -> Response:
        who = await agent(request)
        body = await parse_body(request, of.model)
        stored, _ = await service_of(request).create_record(
            of.kind,
            body,
            project=who.project,
            actor=f"agent:{who.token_name}",
            via="api",
            created_by=who.token_name,
            created_by_token=who.token_id,
        )
        return record_response(stored)

    @router.get(
        of.path,
        name=f"list_{of.kind}s",
        response_model=of.listing,
        tags=[of.tag],
        summary=SUMMARIES[of.kind, "list"],
    )
    async def listing(
        who: CurrentClient,
        service: Service,
        pending: bool | None = None,
        run_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> Response:
        items = await of.lister(service)(
            pending=pending, project=who.project, run_id=run_id_filter(run_id), limit=limit
        )
        return model_response(of.listing(items=items))

    @kind_route(router, of, "get", of.path + "/{call_id}", method="GET", wait=True)
    @fast_path
    async def get(request: Request) -> Response:
        who = await client(request)
        cap = settings_of(request).long_poll_max_seconds
        call_id, wait = call_id_of(request), wait_seconds(request, cap)
        return await held(request, who, of.kind, call_id, wait)


_ALREADY = {
    FUNCTION_CALL: "function call {!r} is already decided",
    HUMAN_CONTACT: "human contact {!r} is already answered",
}


async def give_up(
    request: Request, of: RequestKind, who: ApiClient, call_id: str, reason: str
) -> Response:
    """The agent gives up a request it created (``expired: true`` on its respond route):
    always a fail-closed rejection; refused to a person's token, to another agent (the
    service checks the owner) and on a request already decided."""
    if not who.is_agent:
        raise ForbiddenError("giving up a request is for the agent that created it")
    service = service_of(request)
    if not await service.give_up(of.kind, call_id, who, reason):
        raise AlreadyDecidedError(_ALREADY[of.kind].format(call_id))
    if of.kind == FUNCTION_CALL:
        return model_response(await service.get_function_call(call_id, project=who.project))
    return model_response(await service.get_human_contact(call_id, project=who.project))


def add_abandon_route(router: APIRouter, of: RequestKind) -> None:
    @kind_route(router, of, "abandon", of.path + "/{call_id}/abandon")
    @fast_path
    async def abandon(request: Request) -> Response:
        who = abandoning(await client(request))
        return record_response(await service_of(request).abandon(of.kind, call_id_of(request), who))
