"""A human contact's page in the inbox: the question, its options, and the answer form."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from typing import Unpack

from fastapi import APIRouter
from fastapi.responses import Response
from functionlayer.models import HumanContact

from .._app_state import Service
from .._errors import AlreadyDecidedError, InvalidDecisionError, NotFoundError, ServerError
from .._service import HUMAN_CONTACT, ApprovalService
from . import _views as views
from ._call_form import MAX_TEXT, form_text, form_values
from ._deps import CsrfForm, CurrentViewer, ShownContact, Viewer
from ._lookup import request_context, visible_contact
from ._pages import PREFIX, VIA, not_found, redirect, render
from ._shown import Shown, already_answered, not_accepted

__all__ = ["router"]

router = APIRouter()


async def render_contact(
    service: ApprovalService,
    contact: HumanContact,
    who: Viewer,
    **shown: Unpack[Shown],
) -> Response:
    now = views.now_utc()
    row = views.row_for_contact(contact, now)
    return render(
        "contact.html",
        {
            **await request_context(service, HUMAN_CONTACT, contact, row, who.person, now),
            "csrf": who.session.csrf,
            "contact": contact,
            "outcome": views.contact_outcome(contact),
            "context": views.context_view(contact.spec.context),
            "answer_text": (shown.get("form") or {}).get("response", ""),
            "error": shown.get("error"),
            "notice": shown.get("notice"),
        },
        status_code=shown.get("status_code", 200),
    )


@router.get(PREFIX + "/contacts/{call_id:path}")
async def contact_detail(
    contact: ShownContact, who: CurrentViewer, service: Service, decided: str | None = None
) -> Response:
    shown: Shown = {"notice": "Your answer was recorded."} if decided else {}
    return await render_contact(service, contact, who, **shown)


def _problem(contact: HumanContact, text: str, option_name: str | None) -> str | None:
    options = {o.name: o for o in contact.spec.response_options or []}
    if len(text) > MAX_TEXT:
        return f"The answer is too long (over {MAX_TEXT} characters)."
    if option_name is not None and option_name not in options:
        return "That response option does not exist for this request."
    if not text and option_name is None:
        return "Write an answer (or pick one of the options)."
    return None


@router.post(PREFIX + "/contacts/{call_id:path}")
async def contact_answer(
    call_id: str, form: CsrfForm, who: CurrentViewer, contact: ShownContact, service: Service
) -> Response:
    values = form_values(form)
    text = form_text(form, "response")
    option_name = form_text(form, "response_option_name") or None
    problem = _problem(contact, text, option_name)
    if problem:
        return await render_contact(
            service, contact, who, error=problem, status_code=422, form=values
        )
    try:
        await service.respond_human_contact(
            call_id,
            response=text or None,  # a picked option alone is filled by the policy
            response_option_name=option_name,
            responder=f"user:{who.person.name}",
            via=VIA,
        )
    except NotFoundError:
        return not_found(who.session, who.person)
    except AlreadyDecidedError as exc:
        fresh = await visible_contact(service, call_id, who.person) or contact
        return await render_contact(service, fresh, who, **already_answered(exc, "answered"))
    except (InvalidDecisionError, ServerError) as exc:
        return await render_contact(service, contact, who, **not_accepted(exc, values))
    return redirect(views.contact_url(call_id) + "?decided=1")
