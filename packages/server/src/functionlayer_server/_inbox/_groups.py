"""The review page of a model turn: every call of one review group on one page, each with its
arguments in full (``show_arguments``, the one display rule), its own decision, and "approve
all" / "reject all".

A group is the service's (``ApprovalService.group_members``: same project, same creating
token, same ``group_id``); it only puts calls on one page. Each call is still its own request,
decided through ``ApprovalService.respond_function_call`` with its own policy check, claim and
audit. A submitted page decides only the calls it showed (their ids are in the form): a call
that joined the group after the page was rendered is never decided by it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.display import show_arguments
from functionlayer.models import FunctionCall, FunctionCallStatus

from .. import _schema
from .._errors import AlreadyDecidedError, NotFoundError, ServerError
from .._service import FUNCTION_CALL
from . import _views as views

__all__ = ["GroupPageDeps", "group_url", "install_group_routes"]

PREFIX = "/inbox"
VIA = "web"
MAX_FEEDBACK = 20_000


def group_url(call_id: str) -> str:
    return PREFIX + "/groups/" + quote(call_id, safe="")


@dataclass(frozen=True)
class GroupPageDeps:
    """What the group pages borrow from the inbox router (sessions, CSRF, rendering)."""

    render: Callable[..., Response]
    redirect: Callable[[str], Response]
    current_user: Callable[[Request], Awaitable[tuple[Any, Any]]]
    csrf_ok: Callable[[Request, Any, Mapping[str, Any]], bool]
    csrf_refused: Callable[[Any, Any], Response]
    login_redirect: Callable[[Request], Response]
    not_found: Callable[[Any, Any], Response]
    visible_call: Callable[[str, Any], Awaitable[FunctionCall | None]]


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


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def install_group_routes(router: APIRouter, service: Any, deps: GroupPageDeps) -> None:
    async def members(call_id: str, user: Any) -> tuple[str, list[FunctionCall]] | None:
        anchor = await deps.visible_call(call_id, user)
        if anchor is None:
            return None
        project = await service.get_project(FUNCTION_CALL, call_id, among=user.projects)
        if project is None:
            return None
        calls: list[FunctionCall] = await service.group_members(
            call_id, project=project, person=user
        )
        return project, calls

    async def render_group(
        call_id: str,
        calls: list[FunctionCall],
        session: Any,
        user: Any,
        *,
        results: list[tuple[str, str]] | None = None,
        error: str | None = None,
        status_code: int = 200,
    ) -> Response:
        rows = _rows(calls)
        return deps.render(
            "group.html",
            {
                "user": user,
                "csrf": session.csrf,
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
    async def group_page(request: Request, call_id: str) -> Response:
        session, user = await deps.current_user(request)
        if user is None or session is None:
            return deps.login_redirect(request)
        found = await members(call_id, user)
        if found is None:
            return deps.not_found(session, user)
        return await render_group(call_id, found[1], session, user)

    @router.post(PREFIX + "/groups/{call_id:path}")
    async def group_decide(request: Request, call_id: str) -> Response:
        session, user = await deps.current_user(request)
        form = await request.form()
        if not deps.csrf_ok(request, session, form):
            return deps.csrf_refused(session, user)
        if user is None or session is None:
            return deps.login_redirect(request)
        found = await members(call_id, user)
        if found is None:
            return deps.not_found(session, user)
        project, calls = found
        by_id = {c.call_id: c for c in calls}
        # Only the calls the page showed: their ids came with the form. A call that joined
        # the group since (or any id that is not a member the person may see) is not decided.
        shown: list[str] = []
        for value in form.getlist("shown"):
            if isinstance(value, str) and value in by_id and value not in shown:
                shown.append(value)
        bulk = _text(form, "bulk")
        common_feedback = _text(form, "feedback_all")
        if len(common_feedback) > MAX_FEEDBACK:
            return await render_group(
                call_id, calls, session, user, error="The feedback is too long.", status_code=422
            )
        plan: list[tuple[FunctionCall, FunctionCallStatus | None, str]] = []
        for shown_id in shown:
            call = by_id[shown_id]
            if bulk == "approve_all":
                action = "approve"
            elif bulk == "reject_all":
                action = "reject"
            else:
                action = _text(form, f"decision:{shown_id}")
            if not action:
                continue
            feedback = _text(form, f"feedback:{shown_id}") or common_feedback
            if action not in ("approve", "reject") or action not in _schema.allowed(call.spec):
                plan.append((call, None, f"{call.spec.fn} does not accept {action!r} here"))
            elif action == "approve":
                plan.append((call, FunctionCallStatus(approved=True), ""))
            elif not feedback or len(feedback) > MAX_FEEDBACK:
                plan.append((call, None, "rejecting needs feedback for the agent"))
            else:
                plan.append((call, FunctionCallStatus(approved=False, comment=feedback), ""))
        if not plan:
            return await render_group(
                call_id,
                calls,
                session,
                user,
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
                    responder=f"user:{user.name}",
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
        fresh = await service.group_members(call_id, project=project, person=user)
        return await render_group(call_id, fresh, session, user, results=results)
