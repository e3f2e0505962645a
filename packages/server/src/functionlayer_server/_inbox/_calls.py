"""A function call's page in the inbox: what it proposes (every argument, the agent's
context, the audit trail, whether the agent still waits), the decision form, and the small
state the page watches for live updates."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from collections.abc import Mapping
from typing import Unpack
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from functionlayer.models import FunctionCall

from .. import _schema
from .._app_state import Service
from .._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    InvalidDecisionError,
    NotFoundError,
    ServerError,
)
from .._service import FUNCTION_CALL, ApprovalService
from . import _views as views
from ._arguments import arguments_view, edit_fields, edits_from_form
from ._call_form import decision_from_form, form_text, form_values
from ._deps import CsrfForm, CurrentViewer, ShownCall, Viewer, Watcher
from ._lookup import request_context, visible_call
from ._pages import PREFIX, VIA, not_found, redirect, render, secure
from ._shown import Shown, already_answered, not_accepted

__all__ = ["router"]

STATE_PREFIX = PREFIX + "/state/calls/"

router = APIRouter()


async def render_call(
    service: ApprovalService,
    call: FunctionCall,
    who: Viewer,
    *,
    field_errors: Mapping[str, str] | None = None,
    confirm: bool = False,
    **shown: Unpack[Shown],
) -> Response:
    user = who.person
    now = views.now_utc()
    project = await service.get_project(FUNCTION_CALL, call.call_id, among=user.projects)
    irreversible = await service.irreversible(call, project) if project else False
    origin = await service.requested_by(FUNCTION_CALL, call.call_id, among=user.projects)
    outcome = views.call_outcome(call)
    values = dict(shown.get("form") or {})
    spec = call.spec
    editing = values if values.get("action") == "edit" else None
    row = views.row_for_call(call, now)
    return render(
        "call.html",
        {
            **await request_context(service, FUNCTION_CALL, call, row, user, now),
            "csrf": who.session.csrf,
            "call": call,
            "outcome": outcome,
            "kwargs_json": views.pretty_json(call.spec.kwargs),
            "arguments": arguments_view(spec.kwargs, spec.parameters, spec.description),
            "edit_fields": edit_fields(spec.kwargs, spec.parameters, editing, field_errors),
            "form_error": (field_errors or {}).get("", ""),
            "allowed": _schema.allowed(spec),
            "edited_text": values.get("edited_kwargs", views.pretty_json(call.spec.kwargs)),
            "feedback_text": values.get("feedback", ""),
            "response_text": values.get("response", ""),
            "open_section": values.get("action", ""),
            "error": shown.get("error"),
            "notice": shown.get("notice"),
            "approvals_required": call.spec.policy.approvals_required if call.spec.policy else 1,
            "context": views.context_view(spec.context),
            "irreversible": irreversible,
            "confirm": confirm and irreversible,
            "confirm_fields": [
                (k, v) for k, v in values.items() if k not in ("confirmed_irreversible",)
            ],
            "requested_by": views.requester_label(origin),
            "watch_state": views.watch_state(outcome),
            "state_url": STATE_PREFIX + quote(call.call_id, safe=""),
        },
        status_code=shown.get("status_code", 200),
    )


@router.get(PREFIX + "/calls/{call_id:path}")
async def call_detail(
    call: ShownCall, who: CurrentViewer, service: Service, decided: str | None = None
) -> Response:
    notice = "Your decision was recorded." if decided else None
    return await render_call(service, call, who, notice=notice)


@router.post(PREFIX + "/calls/{call_id:path}")
async def call_decide(
    call_id: str, form: CsrfForm, who: CurrentViewer, call: ShownCall, service: Service
) -> Response:
    values = form_values(form)
    decision, problem, field_errors = await decision_from_form(call, form)
    if decision is None and not field_errors and form_text(form, "action") == "edit":
        _, field_errors = edits_from_form(call.spec.kwargs, call.spec.parameters, form)
    if decision is None:
        return await render_call(
            service,
            call,
            who,
            error=problem,
            status_code=422,
            form=values,
            field_errors=field_errors,
        )
    try:
        await service.respond_function_call(
            call_id, decision, responder=f"user:{who.person.name}", via=VIA
        )
    except NotFoundError:
        return not_found(who.session, who.person)
    except AlreadyDecidedError as exc:
        fresh = await visible_call(service, call_id, who.person) or call
        return await render_call(service, fresh, who, **already_answered(exc, "decided"))
    except ConfirmationRequiredError:
        # The second, deliberate step: nothing was recorded; the page asks to confirm.
        return await render_call(service, call, who, form=values, confirm=True)
    except (InvalidDecisionError, ServerError) as exc:
        return await render_call(service, call, who, **not_accepted(exc, values))
    return redirect(views.call_url(call_id) + "?decided=1")


@router.get(STATE_PREFIX + "{call_id:path}")
async def call_state(call_id: str, person: Watcher, service: Service) -> Response:
    """What the detail page watches (outcome, quorum, execution), as a small JSON."""
    call = await visible_call(service, call_id, person)
    if call is None:
        return secure(JSONResponse({"detail": "not found"}, status_code=404))
    return secure(JSONResponse({"state": views.watch_state(views.call_outcome(call))}))
