"""Reading a request with an optional long-poll (``?wait=S``): counted against the token's
quota and ended early when the client goes away."""

import contextlib

from fastapi import Request
from fastapi.responses import Response

from functionlayer_server._auth import ApiClient
from functionlayer_server._held import unless_gone
from functionlayer_server._store import RequestRecord

from ._deps import long_polls_of, service_of
from ._wire import record_response

__all__ = ["held", "waited"]


async def waited(
    request: Request, who: ApiClient, kind: str, call_id: str, wait: float
) -> RequestRecord | None:
    """The request now (no ``wait``), or a long-poll counted against the token's quota and
    ended early when the client goes away (``None``: its connection is not held for
    nothing)."""
    service = service_of(request)
    # Every token belongs to one project; an approver token sees there only what its person
    # may (the policy checks).
    if wait <= 0:
        return await service.wait_record(
            kind, call_id, 0.0, project=who.project, agent=who.is_agent
        )
    key = (who.project, kind, call_id)
    with (
        long_polls_of(request).holding(who.project, who.token_id, who.token_name),
        service.agent_holding(key) if who.is_agent else contextlib.nullcontext(),
    ):
        record = await unless_gone(
            request,
            service.wait_record(kind, call_id, wait, project=who.project, agent=who.is_agent),
        )
        if record is None:
            # The client went away: nobody reads the answer (and the inbox says so).
            if who.is_agent:
                service.agent_left(who.project, kind, call_id)
            return None
        return record


async def held(request: Request, who: ApiClient, kind: str, call_id: str, wait: float) -> Response:
    record = await waited(request, who, kind, call_id, wait)
    if record is None:  # the client went away: nobody reads the answer
        return Response(status_code=499)
    return record_response(record)
