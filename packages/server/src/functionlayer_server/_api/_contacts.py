"""Human contacts in the API: the shared request routes (``_requests``) and answering one
with an approver token (or giving it up with the agent's)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer._models import HumanContactStatus

from functionlayer_server._errors import AlreadyDecidedError, ForbiddenError
from functionlayer_server._service import HUMAN_CONTACT

from ._deps import client, person_of, service_of
from ._requests import CONTACTS, add_abandon_route, add_request_routes, kind_route
from ._wire import call_id_of, fast_path, model_response, parse_body

__all__ = ["router"]

router = APIRouter()
add_request_routes(router, CONTACTS)


@kind_route(
    router,
    CONTACTS,
    "respond",
    "/agent/human_contacts/{call_id}/respond",
    body="HumanContactStatus",
)
@fast_path
async def respond_human_contact(request: Request) -> Response:
    who = await client(request)
    call_id = call_id_of(request)
    answer = await parse_body(request, HumanContactStatus, strict=True)
    service = service_of(request)
    if answer.expired and answer.response is None:
        if not who.is_agent:
            raise ForbiddenError("giving up a request is for the agent that created it")
        if not await service.give_up(
            HUMAN_CONTACT, call_id, who, "The agent stopped waiting for an answer."
        ):
            raise AlreadyDecidedError(f"human contact {call_id!r} is already answered")
        return model_response(await service.get_human_contact(call_id, project=who.project))
    contact = await service.respond_human_contact(
        call_id,
        response=answer.response,
        response_option_name=answer.response_option_name,
        responder=person_of(who),
        via="api",
        project=who.project,
    )
    return model_response(contact)


add_abandon_route(router, CONTACTS)
