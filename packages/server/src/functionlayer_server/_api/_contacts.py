"""Human contacts in the API: the shared request routes (``_requests``) and answering one
with an approver token (or giving it up with the agent's)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.models import HumanContactStatus

from ._deps import client, person_of, service_of
from ._requests import CONTACTS, add_abandon_route, add_request_routes, give_up, kind_route
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
    if answer.expired and answer.response is None:
        reason = "The agent stopped waiting for an answer."
        return await give_up(request, CONTACTS, who, call_id, reason)
    contact = await service_of(request).respond_human_contact(
        call_id,
        response=answer.response,
        response_option_name=answer.response_option_name,
        responder=person_of(who),
        via="api",
        project=who.project,
    )
    return model_response(contact)


add_abandon_route(router, CONTACTS)
