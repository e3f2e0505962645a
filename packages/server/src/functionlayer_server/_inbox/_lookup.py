"""What the inbox pages read through the service for one person: the requests they may see
(anything else reads as "not found"), a request's audit trail and whether its agent is still
waiting, the requesting agent of each row, and the list page's rows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from functionlayer.models import FunctionCall, HumanContact

from .._audit_view import visible_details
from .._errors import NotFoundError
from .._policy import Person
from .._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService
from . import _views as views
from ._audit_rows import AuditRow, audit_row

__all__ = [
    "PAGE_SIZE",
    "RECENT_LIMIT",
    "audit_rows",
    "list_context",
    "presence",
    "request_context",
    "visible_call",
    "visible_contact",
]

RECENT_LIMIT = 20
PAGE_SIZE = 50


Shown = TypeVar("Shown", FunctionCall, HumanContact)


async def _visible(
    service: ApprovalService,
    kind: str,
    get: Callable[..., Awaitable[Shown]],
    call_id: str,
    person: Person,
) -> Shown | None:
    """The request, if ``person`` may see it: of one of their projects (call ids are unique
    per project only: looked up in the person's projects), and allowed by the policy.
    Anything else reads as "not found"."""
    try:
        found = await get(call_id, among=person.projects)
    except NotFoundError:
        return None
    project = await service.get_project(kind, call_id, among=person.projects)
    if project is None or not await service.may_see(found, person, project):
        return None
    return found


async def visible_call(
    service: ApprovalService, call_id: str, person: Person
) -> FunctionCall | None:
    return await _visible(service, FUNCTION_CALL, service.get_function_call, call_id, person)


async def visible_contact(
    service: ApprovalService, call_id: str, person: Person
) -> HumanContact | None:
    return await _visible(service, HUMAN_CONTACT, service.get_human_contact, call_id, person)


async def audit_rows(
    service: ApprovalService, kind: str, call_id: str, person: Person
) -> list[AuditRow]:
    project = await service.get_project(kind, call_id, among=person.projects)
    entries = await service.audit_trail(call_id, project=project) if project else []
    return [
        audit_row(
            views.format_time(entry.at),
            entry.who,
            entry.via,
            entry.action,
            visible_details(entry.details),
        )
        for entry in entries
    ]


async def presence(
    service: ApprovalService, kind: str, call_id: str, now: datetime, person: Person
) -> str:
    """Whether the agent is still waiting for this answer, in words for the page."""
    project = await service.get_project(kind, call_id, among=person.projects)
    state, seen = (
        await service.agent_presence(kind, call_id, project) if project else ("unknown", None)
    )
    if state == "waiting":
        return "waiting for your answer now"
    if state == "unknown":
        return "has not checked for an answer yet"
    ago = views.since(datetime.fromtimestamp(seen or 0, UTC), now)
    if state == "left":
        return (
            f"stopped waiting {ago} ago (its connection closed); your decision is kept "
            "and used if it comes back"
        )
    return (
        f"last checked {ago} ago and may have stopped waiting; your decision is kept and "
        "used if it comes back"
    )


async def request_context(
    service: ApprovalService,
    kind: str,
    request: FunctionCall | HumanContact,
    row: views.RequestRow,
    person: Person,
    now: datetime,
) -> dict[str, Any]:
    """What the pages of a call and of a contact share: when it was asked and when it
    expires, where it was routed, whether its agent still waits, and its audit trail."""
    status = request.status
    requested = status.requested_at if status else None
    return {
        "user": person,
        "spec": request.spec,
        "row": row,
        "requested_at": views.format_time(requested),
        "waiting": views.since(requested, now),
        "agent": await presence(service, kind, request.call_id, now, person),
        "expires_at": views.format_time(status.expires_at if status else None),
        "expires_in": row.expires_in,
        "channel": views.channel_context(request.spec.channel, request.spec.policy),
        "audit": await audit_rows(service, kind, request.call_id, person),
    }


async def _label_requesters(
    service: ApprovalService, rows: list[views.RequestRow], person: Person
) -> None:
    """Each row's requesting agent token and project (read from the stored records)."""
    origins = await asyncio.gather(
        *(
            service.requested_by(
                FUNCTION_CALL if row.kind == "call" else HUMAN_CONTACT,
                row.call_id,
                among=person.projects,
            )
            for row in rows
        )
    )
    for row, origin in zip(rows, origins, strict=True):
        row.requested_by = views.requester_label(origin)


def _calls(found: Sequence[FunctionCall | HumanContact]) -> list[FunctionCall]:
    return [c for c in found if isinstance(c, FunctionCall)]


def _contacts(found: Sequence[FunctionCall | HumanContact]) -> list[HumanContact]:
    return [c for c in found if isinstance(c, HumanContact)]


async def list_context(service: ApprovalService, person: Person, page: int = 1) -> dict[str, Any]:
    """The list page: every pending request this person may decide, longest-waiting first
    and paged, and the most recently decided ones."""
    now = views.now_utc()
    (
        pending_calls,
        pending_contacts,
        (done_calls, _),
        (done_contacts, _),
    ) = await asyncio.gather(
        # Every pending request this person may decide, in one pass each (paged below,
        # never silently capped; bounded by the agent tokens' pending quotas).
        service.inbox_pending(FUNCTION_CALL, person),
        service.inbox_pending(HUMAN_CONTACT, person),
        service.inbox_page(FUNCTION_CALL, person, pending=False, limit=RECENT_LIMIT),
        service.inbox_page(HUMAN_CONTACT, person, pending=False, limit=RECENT_LIMIT),
    )
    pending = [views.row_for_call(c, now) for c in _calls(pending_calls)] + [
        views.row_for_contact(c, now) for c in _contacts(pending_contacts)
    ]
    # Longest-waiting first: that is the one most likely holding an agent up.
    pending.sort(key=lambda row: (row.requested_at is None, row.requested_at or now))
    total = len(pending)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    decided = [views.row_for_call(c, now) for c in _calls(done_calls)] + [
        views.row_for_contact(c, now) for c in _contacts(done_contacts)
    ]
    decided.sort(key=lambda row: row.decided_at or row.requested_at or now, reverse=True)
    shown = pending[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    await _label_requesters(service, [*shown, *decided[:RECENT_LIMIT]], person)
    return {
        "pending": shown,
        "pending_total": total,
        "page": page,
        "pages": pages,
        "decided": decided[:RECENT_LIMIT],
    }
