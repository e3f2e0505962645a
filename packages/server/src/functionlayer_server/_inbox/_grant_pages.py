"""Inbox pages for grants: the grant form of a call (approve it and grant future calls like
it) and the grants page (the person's grants, every grant for the operator's admins), with
revoke. Who may grant what is decided by the service (``_grants``), never here."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.models import FunctionCall, FunctionCallStatus

from .._app_state import Service
from .._errors import AlreadyDecidedError, NotFoundError, ServerError
from .._grants import MAX_GRANT_USES, exact_scope
from .._service import FUNCTION_CALL
from ._call_form import form_values
from ._deps import CsrfForm, CurrentViewer, ShownCall, Viewer
from ._lookup import visible_call
from ._pages import PREFIX, VIA, error_page, not_found, redirect, render

__all__ = ["grant_url", "router"]

LIFETIMES = [
    ("3600", "1 hour"),
    ("28800", "8 hours"),
    ("86400", "1 day"),
    ("604800", "1 week"),
    ("2592000", "30 days"),
]

router = APIRouter()


def grant_url(call_id: str) -> str:
    return f"{PREFIX}/grant/{quote(call_id, safe='')}"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _scope_text(call: FunctionCall) -> str:
    try:
        return "\n".join(c.text() for c in exact_scope(call.spec.kwargs))
    except ValueError:
        return "\n".join(f"{name} any" for name in call.spec.kwargs)


def _form_page(
    call: FunctionCall,
    who: Viewer,
    *,
    form: Mapping[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    values = dict(form or {})
    pending = call.status is None or call.status.approved is None
    return render(
        "grant_form.html",
        {
            "user": who.person,
            "csrf": who.session.csrf,
            "call": call,
            "call_url": f"{PREFIX}/calls/{quote(call.call_id, safe='')}",
            "action_url": grant_url(call.call_id),
            "pending": pending,
            "scope_text": values.get("scope", _scope_text(call)),
            "agents": values.get("agents", "token"),
            "lifetime": values.get("lifetime_seconds", "86400"),
            "lifetimes": LIFETIMES,
            "max_uses": values.get("max_uses", "10"),
            "max_uses_limit": MAX_GRANT_USES,
            "error": error,
        },
        status_code=status_code,
    )


@router.get(PREFIX + "/grant/{call_id:path}")
async def grant_form(call: ShownCall, who: CurrentViewer) -> Response:
    return _form_page(call, who)


@router.post(PREFIX + "/grant/{call_id:path}")
async def grant_submit(
    call_id: str, form: CsrfForm, who: CurrentViewer, call: ShownCall, service: Service
) -> Response:
    user = who.person
    values = form_values(form)
    lines = [line.strip() for line in values.get("scope", "").splitlines() if line.strip()]
    try:
        lifetime = float(values.get("lifetime_seconds", ""))
        uses = int(values.get("max_uses", ""))
    except ValueError:
        return _form_page(
            call,
            who,
            form=values,
            error="Give a lifetime and a whole number of uses.",
            status_code=422,
        )
    body = {
        "scope": lines,
        "agents": values.get("agents", "token"),
        "lifetime_seconds": lifetime,
        "max_uses": uses,
    }
    project = await service.get_project(FUNCTION_CALL, call_id, among=user.projects)
    if project is None:
        return not_found(who.session, user)
    pending = call.status is None or call.status.approved is None
    try:
        # Checked before anything is recorded: a refused grant approves nothing either.
        await service.create_grant(
            call_id, body, person_name=user.name, project=project, via=VIA, dry_run=True
        )
        if pending and values.get("approve") == "yes":
            await service.respond_function_call(
                call_id,
                FunctionCallStatus(approved=True),
                responder=f"user:{user.name}",
                via=VIA,
                project=project,
            )
        grant = await service.create_grant(
            call_id, body, person_name=user.name, project=project, via=VIA
        )
    except AlreadyDecidedError as exc:
        fresh = await visible_call(service, call_id, user) or call
        return _form_page(
            fresh, who, form=values, error=f"Nothing was changed: {exc}", status_code=409
        )
    except NotFoundError:
        return not_found(who.session, user)
    except ServerError as exc:
        code = exc.status_code if 400 <= exc.status_code < 500 else 422
        return _form_page(call, who, form=values, error=f"Not accepted: {exc}", status_code=code)
    return redirect(f"{PREFIX}/grants?made={quote(grant.id, safe='')}")


@router.get(PREFIX + "/grants")
async def grants_page(
    request: Request, who: CurrentViewer, service: Service, made: str | None = None
) -> Response:
    admin = service.is_admin(who.person)
    grants = await service.list_grants(who.person, every=admin)
    now = service.clock.now()
    rows = []
    for grant in grants:
        data = grant.to_json(now)
        rows.append(
            {
                **data,
                "scope_text": " AND ".join(data["scope"]) or "(no arguments)",
                "agents_text": f"agent token {grant.token_name or grant.token_id}"
                if grant.token_id
                else f"every agent of {grant.project}",
                "expires_text": _when(grant.expires_at),
                "created_text": _when(grant.created_at),
                "source_url": f"{PREFIX}/calls/{quote(grant.source_call_id, safe='')}",
            }
        )
    return render(
        "grants.html",
        {
            "user": who.person,
            "csrf": who.session.csrf,
            "grants": rows,
            "admin": admin,
            "made": made,
            "revoked": request.query_params.get("revoked"),
        },
    )


@router.post(PREFIX + "/grants/{grant_id}/revoke")
async def grant_revoke(
    grant_id: str, form: CsrfForm, who: CurrentViewer, service: Service
) -> Response:
    try:
        await service.revoke_grant(grant_id, who.person, via=VIA)
    except NotFoundError:
        return error_page(
            who.session, who.person, 404, "Not found", "There is no such grant of yours."
        )
    except ServerError as exc:
        return error_page(who.session, who.person, exc.status_code, "Not revoked", str(exc))
    return redirect(f"{PREFIX}/grants?revoked={quote(grant_id, safe='')}")
