"""Audit export: every recorded event (created, delivered, escalated, approved, rejected,
responded, expired, refused answers, ...) as JSON lines, for the token's project only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from functionlayer_server._audit_view import visible_entry
from functionlayer_server._errors import AuthenticationError
from functionlayer_server._service import ApprovalService, AuditEntry

__all__ = ["audit_lines", "create_audit_router"]


async def audit_lines(
    service: ApprovalService,
    *,
    project: str | None = None,
    since: float | None = None,
    call_id: str | None = None,
    agent: bool = False,
) -> AsyncIterator[str]:
    """One JSON object per line (``call_id, kind, project, at, who, via, action, details``),
    oldest first. The project is recorded with each entry (call ids are unique per project
    only); an older entry that could not be attributed takes the project of the one request
    with its call id, and none (left out of a project's export) when several share it. Details
    are shown as :func:`~functionlayer_server._audit_view.visible_details` allows (no channel
    secrets)."""
    entries: list[AuditEntry] = await service.audit_trail(call_id, project=project)
    owners: dict[tuple[str, str], str | None] = {}
    for entry in entries:
        owner = entry.project
        if owner is None:
            key = (entry.kind, entry.call_id)
            if key not in owners:
                owners[key] = await service.get_project(entry.kind, entry.call_id)
            owner = owners[key]
        if project is not None and owner != project:
            continue
        if since is not None and entry.at.timestamp() < since:
            continue
        line: dict[str, Any] = {"project": owner, **visible_entry(entry, agent=agent)}
        yield json.dumps(line, sort_keys=True, default=str) + "\n"


def create_audit_router(service: ApprovalService) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/functionlayer/v1/audit.jsonl",
        tags=["audit"],
        summary="Export the audit trail of this token's project as JSON lines, oldest first",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    async def export_audit(
        authorization: str | None = Header(default=None, include_in_schema=False),
        since: float | None = Query(
            default=None, allow_inf_nan=False, description="only entries at or after this unix time"
        ),
        call_id: str | None = Query(default=None, max_length=256),
    ) -> StreamingResponse:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "missing Authorization header: send 'Authorization: Bearer <token>'"
            )
        client = await service.authenticate_token(token.strip())
        if client is None:
            raise AuthenticationError("unknown API token")
        lines = [
            line
            async for line in audit_lines(
                service,
                project=client.project,
                since=since,
                call_id=call_id,
                agent=client.is_agent,
            )
        ]

        async def body() -> AsyncIterator[str]:
            for line in lines:
                yield line

        return StreamingResponse(body(), media_type="application/x-ndjson")

    return router
