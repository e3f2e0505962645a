"""Creating a request: checked (``_validate``, routing by the authority), decided at once if an
operator rule or a grant covers it (``_at_creation``), else stored pending with its webhook
rows and delivery jobs by the ledger. Idempotent per (project, call id)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypedDict, Unpack

from functionlayer.models import (
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
)

from functionlayer_server._errors import ConflictError
from functionlayer_server._quotas import PendingQuota
from functionlayer_server._store import RequestRecord

from ._at_creation import AtCreation
from ._part import Part
from ._records import (
    FUNCTION_CALL,
    HUMAN_CONTACT,
    Request,
    audit_row,
    call_from,
    contact_from,
    dt,
)
from ._validate import check_request, same_request

__all__ = ["Creator", "Origin"]


class Origin(TypedDict, total=False):
    """Where a new request comes from (each one left out: its default)."""

    project: str  # the agent token's project (default "default")
    actor: str  # who the audit names (default "api")
    via: str  # through what (default "api")
    created_by: str  # the creating agent token's name (a label)
    created_by_token: str  # its id (what owns the request)


@dataclass(eq=False)
class Creator(Part):
    """Creates requests (``ApprovalService.create_*``)."""

    at_creation: AtCreation
    pending_quota: PendingQuota

    async def create_function_call(
        self, call: FunctionCall, **origin: Unpack[Origin]
    ) -> tuple[FunctionCall, bool]:
        """Store a new request (the status the caller sent is ignored: the server owns it).
        Idempotent per call id; returns the stored call and whether it was created now.
        A request routed outside the operator's rules is refused (``RoutingRefusedError``)
        before anything is stored or sent."""
        record, created = await self.create_record(FUNCTION_CALL, call, **origin)
        return call_from(record), created

    async def create_human_contact(
        self, contact: HumanContact, **origin: Unpack[Origin]
    ) -> tuple[HumanContact, bool]:
        record, created = await self.create_record(HUMAN_CONTACT, contact, **origin)
        return contact_from(record), created

    async def create_record(
        self, kind: str, request: Request, **origin: Unpack[Origin]
    ) -> tuple[RequestRecord, bool]:
        """``create_function_call`` / ``create_human_contact`` answering with the stored record
        (the API renders its JSON with ``RequestRecord.to_json``, without a model round trip)."""
        project = origin.get("project", "default")
        actor, via = origin.get("actor", "api"), origin.get("via", "api")
        check_request(request)
        call_id, spec = request.call_id, request.spec
        await self.authority.check_routing(spec, project)
        now = self.ledger.clock.now()
        timeout = spec.timeout_seconds
        if timeout is None:
            timeout = self.authority.rules.for_project(project).default_timeout_seconds
        expires_at = now + timeout if timeout is not None else None
        status_type = FunctionCallStatus if kind == FUNCTION_CALL else HumanContactStatus
        status = status_type(
            requested_at=dt(now), expires_at=dt(expires_at) if expires_at else None
        )
        # Stored in the order the agent sent (signature order, which every channel shows);
        # a retry is the same request if it is equal as JSON, whatever its key order.
        spec_json = json.dumps(spec.model_dump(mode="json"), separators=(",", ":"), default=str)
        record = RequestRecord(
            kind=kind,
            call_id=call_id,
            project=project,
            run_id=request.run_id,
            spec=spec_json,
            status=status.model_dump_json(),
            completed=False,
            expires_at=expires_at,
            created_at=now,
            version=0,
            created_by=origin.get("created_by", ""),
            created_by_token=origin.get("created_by_token", ""),
        )
        audit = audit_row(
            record, now, actor, via, "created", {"project": project, "run_id": request.run_id}
        )
        if kind == FUNCTION_CALL and isinstance(request, FunctionCall):
            # An operator rule or a person's live grant may decide it now (see _grants).
            decided = await self.at_creation.decide(record, request, audit)
            if decided is not None:
                return decided, True
        # Call ids are unique per project: another project's request under the same id is
        # another request (nothing about it is seen, nothing of it is reused).
        quota = self.pending_quota.creating(
            kind, call_id, project, record.created_by_token, record.created_by
        )
        stored, created = await self.ledger.insert(record, audit, quota)
        if created:
            return stored, True
        if not same_request(kind, stored.spec, spec_json):
            raise ConflictError(
                f"a different request already exists under call_id {call_id!r} "
                "(same call id, different function or arguments)"
            )
        if stored.run_id != request.run_id:
            # A request is its call id, function and arguments: a restarted agent (a new
            # run id) resumes it, pending or decided. The stored run id stays.
            details = {"run_id": request.run_id, "original_run_id": stored.run_id}
            await self.audit.add(audit_row(stored, now, actor, via, "resumed", details))
        return await self.ledger.expire_if_due(stored), False
