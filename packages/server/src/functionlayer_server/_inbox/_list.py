"""The inbox's list: the page, the fragment its script refreshes, and the long-poll that
tells it when to."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .._app_state import Config, Service
from ._deps import CurrentViewer, Watcher
from ._lookup import list_context
from ._pages import PREFIX, render, secure

__all__ = ["router"]

LONG_POLL_SECONDS = 25.0

router = APIRouter()


def _page(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page") or 1))
    except ValueError:
        return 1


@router.get(PREFIX)
@router.get(PREFIX + "/")
async def inbox_list(request: Request, who: CurrentViewer, service: Service) -> Response:
    # Read the counter before the lists: a change in between triggers one more refresh.
    version = int(await service.wait_for_change(-1, 0))
    context = await list_context(service, who.person, _page(request))
    return render(
        "list.html", {"user": who.person, "csrf": who.session.csrf, "version": version, **context}
    )


@router.get(PREFIX + "/fragment")
async def inbox_fragment(request: Request, person: Watcher, service: Service) -> Response:
    return render("_rows.html", await list_context(service, person, _page(request)))


@router.get(PREFIX + "/changes")
async def inbox_changes(
    person: Watcher, service: Service, settings: Config, since: int = -1
) -> Response:
    """Long-poll: answers as soon as anything changed after ``since``, or after ~25 s."""
    cap = float(settings.long_poll_max_seconds or 0)
    timeout = min(LONG_POLL_SECONDS, cap) if cap > 0 else LONG_POLL_SECONDS
    version = await service.wait_for_change(since, timeout)
    return secure(JSONResponse({"version": int(version)}))
