"""One approval, one execution: the server side of execution claims.

An approved function call authorises at most one run of its body. Before running it, the agent
claims the execution; the claim is a compare-and-set on the request's version that writes
``status.execution`` (so only the first claim wins, across server processes), with an
``execution_started`` audit entry. When the body ends, the agent reports the outcome (what it
returned or raised, already summarised and redacted by the client), recorded with an
``executed`` audit entry and a ``ServiceEvent`` of type ``executed``. A claim whose outcome
never arrives stays "started, outcome unknown": nothing ever re-runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from functionlayer.models import Execution, ExecutionClaim, ExecutionReport, FunctionCall

from functionlayer_server._errors import ConflictError, InvalidRequestError
from functionlayer_server._ownership import check_owner
from functionlayer_server._store import AuditRow, RequestRecord

if TYPE_CHECKING:
    from functionlayer_server._service import ApprovalService

__all__ = ["MAX_SUMMARY", "claim_execution", "report_execution"]

MAX_SUMMARY = 500
_FUNCTION_CALL = "function_call"


class ExecutionRefusedError(ConflictError):
    """The request is not approved (pending, rejected, answered instead or expired), or the
    claim does not hold its execution."""

    code = "execution_refused"


def _check_creator(record: RequestRecord, creator: str | None) -> None:
    """``creator``: the calling agent token's id (None: not an agent token, nothing to check)."""
    if creator is not None:
        check_owner(record, creator, "claim or report its execution")


def _check_claim_id(claim_id: str) -> None:
    if not 0 < len(claim_id) <= 256 or not claim_id.isprintable():
        raise InvalidRequestError("claim_id must be 1-256 printable characters")


async def claim_execution(
    service: ApprovalService,
    call_id: str,
    claim: Execution,
    *,
    project: str,
    actor: str,
    via: str = "api",
    creator: str | None = None,
) -> ExecutionClaim:
    """Grant the first claim on an approved call's execution; later claims get the recorded
    execution (``granted`` false), a retry with the same claim id is granted again. With
    ``creator`` (an agent token's id), only the token that created the request may claim."""
    _check_claim_id(claim.claim_id)
    for _ in range(20):  # retries only while a concurrent change (another claim) lands
        record = await service._record(_FUNCTION_CALL, call_id, project)
        _check_creator(record, creator)
        call = service._call_from(record)
        status = call.status
        if status is None or status.approved is not True:
            state = "pending" if status is None or status.approved is None else "not approved"
            if status is not None and status.abandoned_at is not None:
                state = "abandoned (its agent stopped waiting)"
            raise ExecutionRefusedError(
                f"function call {call_id!r} is {state}: only an approved call may run"
            )
        if status.execution is not None:
            granted = status.execution.claim_id == claim.claim_id
            return ExecutionClaim(granted=granted, execution=status.execution)
        now = service.clock.now()
        execution = Execution(
            claim_id=claim.claim_id,
            claimed_by=(claim.claimed_by or "")[:256] or None,
            started_at=_dt(now),
        )
        new_status = status.model_copy(update={"execution": execution})
        audit = AuditRow(
            kind=_FUNCTION_CALL,
            call_id=call_id,
            at=now,
            actor=actor,
            via=via,
            action="execution_started",
            details={"claim_id": claim.claim_id, "claimed_by": execution.claimed_by},
            project=record.project,
        )
        written = await _write(service, record, new_status.model_dump_json(), audit, "execution")
        if written is not None:
            return ExecutionClaim(granted=True, execution=execution)
    raise ConflictError(f"function call {call_id!r} kept changing; try again")


async def report_execution(
    service: ApprovalService,
    call_id: str,
    report: ExecutionReport,
    *,
    project: str,
    actor: str,
    via: str = "api",
    creator: str | None = None,
) -> FunctionCall:
    """Record how the claimed execution ended; only the claim holder may report, once (an
    identical retry is accepted)."""
    _check_claim_id(report.claim_id)
    summary = report.summary[:MAX_SUMMARY]
    for _ in range(20):
        record = await service._record(_FUNCTION_CALL, call_id, project)
        _check_creator(record, creator)
        call = service._call_from(record)
        status = call.status
        execution = status.execution if status is not None else None
        if status is None or execution is None or execution.claim_id != report.claim_id:
            raise ExecutionRefusedError(
                f"function call {call_id!r}: this claim does not hold its execution"
            )
        if execution.outcome is not None:
            if (execution.outcome, execution.summary) == (report.outcome, summary):
                return call
            raise ExecutionRefusedError(
                f"function call {call_id!r}: its outcome was already reported"
            )
        now = service.clock.now()
        done = execution.model_copy(
            update={"outcome": report.outcome, "summary": summary, "finished_at": _dt(now)}
        )
        new_status = status.model_copy(update={"execution": done})
        audit = AuditRow(
            kind=_FUNCTION_CALL,
            call_id=call_id,
            at=now,
            actor=actor,
            via=via,
            action="executed",
            details={"claim_id": report.claim_id, "outcome": report.outcome, "summary": summary},
            project=record.project,
        )
        written = await _write(service, record, new_status.model_dump_json(), audit, "executed")
        if written is not None:
            executed = service._call_from(written[0])
            service._emit("executed", written[0], audit, written[1], request=executed)
            return executed
    raise ConflictError(f"function call {call_id!r} kept changing; try again")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def _write(
    service: ApprovalService, record: RequestRecord, status: str, audit: AuditRow, event: str
) -> tuple[RequestRecord, str | None] | None:
    """Compare-and-set the status of a decided request: the new record and the id of the
    webhook event announcing it (written in the same transaction), or None if it changed."""
    new = record.changed(status, completed=True)
    rows, event_id = service._outbox("executed", new, audit) if event == "executed" else ([], None)
    ok = await service.store.update_request(
        record.kind,
        record.call_id,
        project=record.project,
        status=status,
        completed=True,
        expected_version=record.version,
        audit=audit,
        notify=service._notice(event, record),
        outbox=rows,
    )
    if not ok:
        return None
    service._bump()
    return new, event_id
