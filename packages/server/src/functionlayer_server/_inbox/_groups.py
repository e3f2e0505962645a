"""The review page of a model turn: every call of one review group on one page, each with its
arguments in full (``show_arguments``, the one display rule), its own decision, and "approve
all" / "reject all".

A group is the service's (``ApprovalService.group_members``: same project, same creating
token, same ``group_id``); it only puts calls on one page. Each call is still its own request,
decided through ``ApprovalService.respond_function_call`` with its own policy check, claim and
audit. A submitted page decides only the calls it showed (their ids are in the form): a call
that joined the group after the page was rendered is never decided by it.
"""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from functionlayer.display import show_arguments
from functionlayer.models import FunctionCall, FunctionCallStatus
from starlette.datastructures import FormData

from .. import _schema
from .._app_state import Service
from .._errors import AlreadyDecidedError, NotFoundError, ServerError
from .._policy import Person
from .._service import FUNCTION_CALL, ApprovalService
from . import _views as views
from ._call_form import MAX_TEXT, form_text
from ._deps import CsrfForm, CurrentViewer, Viewer
from ._lookup import visible_call
from ._pages import PREFIX, VIA, not_found, render

__all__ = ["group_url", "router"]

router = APIRouter()


def group_url(call_id: str) -> str:
    return PREFIX + "/groups/" + quote(call_id, safe="")


@dataclass(frozen=True)
class GroupRow:
    call: FunctionCall
    arguments: str
    outcome: views.Outcome
    allowed: tuple[str, ...]
    dom_id: str


def _rows(calls: list[FunctionCall]) -> list[GroupRow]:
    rows = []
    for index, call in enumerate(calls):
        shown = show_arguments(call.spec.kwargs, call.spec.parameters, room=None)
        assert shown.complete  # no room limit: every argument, in full
        rows.append(
            GroupRow(
                call=call,
                arguments=shown.text,
                outcome=views.call_outcome(call),
                allowed=tuple(_schema.allowed(call.spec)),
                dom_id=f"call-{index}",
            )
        )
    return rows


async def _members(
    service: ApprovalService, call_id: str, person: Person
) -> tuple[str, list[FunctionCall]] | None:
    anchor = await visible_call(service, call_id, person)
    if anchor is None:
        return None
    project = await service.get_project(FUNCTION_CALL, call_id, among=person.projects)
    if project is None:
        return None
    return project, await service.group_members(call_id, project=project, person=person)


def _render_group(
    call_id: str,
    calls: list[FunctionCall],
    who: Viewer,
    *,
    results: list[tuple[str, str]] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = _rows(calls)
    return render(
        "group.html",
        {
            "user": who.person,
            "csrf": who.session.csrf,
            "rows": rows,
            "pending": [r for r in rows if r.outcome.pending],
            "action_url": group_url(call_id),
            "results": results or [],
            "error": error,
            "call_url": views.call_url,
        },
        status_code=status_code,
    )


@router.get(PREFIX + "/groups/{call_id:path}")
async def group_page(call_id: str, who: CurrentViewer, service: Service) -> Response:
    found = await _members(service, call_id, who.person)
    if found is None:
        return not_found(who.session, who.person)
    return _render_group(call_id, found[1], who)


Plan = list[tuple[FunctionCall, FunctionCallStatus | None, str]]


def _plan(form: FormData, calls: list[FunctionCall], common_feedback: str) -> Plan:
    """The decision for each call the page showed (their ids came with the form): a call
    that joined the group since (or any id that is not a member the person may see) is not
    decided."""
    by_id = {c.call_id: c for c in calls}
    shown: list[str] = []
    for value in form.getlist("shown"):
        if isinstance(value, str) and value in by_id and value not in shown:
            shown.append(value)
    bulk = form_text(form, "bulk")
    plan: Plan = []
    for shown_id in shown:
        call = by_id[shown_id]
        if bulk == "approve_all":
            action = "approve"
        elif bulk == "reject_all":
            action = "reject"
        else:
            action = form_text(form, f"decision:{shown_id}")
        if not action:
            continue
        feedback = form_text(form, f"feedback:{shown_id}") or common_feedback
        if action not in ("approve", "reject") or action not in _schema.allowed(call.spec):
            plan.append((call, None, f"{call.spec.fn} does not accept {action!r} here"))
        elif action == "approve":
            plan.append((call, FunctionCallStatus(approved=True), ""))
        elif not feedback or len(feedback) > MAX_TEXT:
            plan.append((call, None, "rejecting needs feedback for the agent"))
        else:
            plan.append((call, FunctionCallStatus(approved=False, comment=feedback), ""))
    return plan


@router.post(PREFIX + "/groups/{call_id:path}")
async def group_decide(
    call_id: str, form: CsrfForm, who: CurrentViewer, service: Service
) -> Response:
    found = await _members(service, call_id, who.person)
    if found is None:
        return not_found(who.session, who.person)
    project, calls = found
    common_feedback = form_text(form, "feedback_all")
    if len(common_feedback) > MAX_TEXT:
        return _render_group(
            call_id, calls, who, error="The feedback is too long.", status_code=422
        )
    plan = _plan(form, calls, common_feedback)
    if not plan:
        return _render_group(
            call_id,
            calls,
            who,
            error="Nothing was decided: choose a decision for at least one call.",
            status_code=422,
        )
    results: list[tuple[str, str]] = []
    for call, decision, problem in plan:
        if decision is None:
            results.append((call.call_id, f"not decided: {problem}"))
            continue
        try:
            await service.respond_function_call(
                call.call_id,
                decision,
                responder=f"user:{who.person.name}",
                via=VIA,
                project=project,
            )
        except AlreadyDecidedError:
            results.append((call.call_id, "not changed: it was already decided"))
        except NotFoundError:
            results.append((call.call_id, "not found"))
        except ServerError as exc:
            results.append((call.call_id, f"not accepted: {exc}"))
        else:
            results.append((call.call_id, "approved" if decision.approved else "rejected"))
    fresh = await service.group_members(call_id, project=project, person=who.person)
    return _render_group(call_id, fresh, who, results=results)
