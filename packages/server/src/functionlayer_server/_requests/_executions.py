"""One approval, one execution: the server side of execution claims.

An approved function call authorises at most one run of its body. Before running it, the agent
claims the execution; the claim is the ledger's compare-and-set on the request's version that
writes ``status.execution`` (so only the first claim wins, across server processes), with an
``execution_started`` audit entry (a ``claimed`` change: not announced). When the body ends,
the agent reports the outcome (what it returned or raised, already summarised and redacted by
the client), recorded with an ``executed`` audit entry, its webhook rows and a ``ServiceEvent``
of type ``executed``. A claim whose outcome never arrives stays "started, outcome unknown":
nothing ever re-runs it.
"""

from __future__ import annotations

from typing import Required, TypedDict, Unpack

from functionlayer.models import Execution, ExecutionClaim, ExecutionReport, FunctionCall

from functionlayer_server._errors import ConflictError, InvalidRequestError
from functionlayer_server._ownership import check_owner
from functionlayer_server._store import AuditRow, RequestRecord

from ._part import Part
from ._records import FUNCTION_CALL, audit_row, call_from, dt

__all__ = ["MAX_SUMMARY", "ExecutionRefusedError", "Executions", "Runner"]

MAX_SUMMARY = 500


class ExecutionRefusedError(ConflictError, code="execution_refused"):
    """The request is not approved (pending, rejected, answered instead or expired), or the
    claim does not hold its execution."""


class Runner(TypedDict, total=False):
    """Who claims a call's execution or reports how it ended."""

    project: Required[str]  # the request's project
    actor: Required[str]  # who the audit names
    via: str  # through what (default "api")
    creator: str | None  # an agent token's id: only the token that created the call may


def _check_claim_id(claim_id: str) -> None:
    if not 0 < len(claim_id) <= 256 or not claim_id.isprintable():
        raise InvalidRequestError("claim_id must be 1-256 printable characters")


class Executions(Part):
    """Execution claims and outcome reports of approved calls."""

    async def _read(self, call_id: str, by: Runner) -> RequestRecord:
        """The call; ``by["creator"]``: the calling agent token's id (None: not an agent token,
        nothing to check), which must have created it."""
        record = await self.ledger.read(FUNCTION_CALL, call_id, by["project"])
        creator = by.get("creator")
        if creator is not None:
            check_owner(record, creator, "claim or report its execution")
        return record

    def _audit(
        self, record: RequestRecord, by: Runner, action: str, details: dict[str, object]
    ) -> AuditRow:
        now = self.ledger.clock.now()
        return audit_row(record, now, by["actor"], by.get("via", "api"), action, details)

    async def claim_execution(
        self,
        call_id: str,
        claim: Execution,
        *,
        current: RequestRecord | None = None,
        **by: Unpack[Runner],
    ) -> ExecutionClaim:
        """Grant the first claim on an approved call's execution; later claims get the recorded
        execution (``granted`` false), a retry with the same claim id is granted again. With
        ``creator`` (an agent token's id), only the token that created the request may claim.
        ``current``: the call as the caller just read it (the claiming wait's wake-up read),
        used for the first try instead of reading it again; the compare-and-set refuses it if
        it changed since, and the retry reads afresh."""
        _check_claim_id(claim.claim_id)
        for _ in range(20):  # retries only while a concurrent change (another claim) lands
            if current is not None and (current.kind, current.call_id, current.project) == (
                FUNCTION_CALL,
                call_id,
                by["project"],
            ):
                record, current = current, None
                creator = by.get("creator")
                if creator is not None:
                    check_owner(record, creator, "claim or report its execution")
            else:
                record = await self._read(call_id, by)
            status = call_from(record).status
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
            claimed_by = (claim.claimed_by or "")[:256] or None
            details: dict[str, object] = {"claim_id": claim.claim_id, "claimed_by": claimed_by}
            audit = self._audit(record, by, "execution_started", details)
            execution = Execution(
                claim_id=claim.claim_id, claimed_by=claimed_by, started_at=dt(audit.at)
            )
            new_status = status.model_copy(update={"execution": execution})
            if await self.ledger.commit(record, new_status.model_dump_json(), audit, "claimed"):
                return ExecutionClaim(granted=True, execution=execution)
        raise ConflictError(f"function call {call_id!r} kept changing; try again")

    async def report_execution(
        self, call_id: str, report: ExecutionReport, **by: Unpack[Runner]
    ) -> FunctionCall:
        """Record how the claimed execution ended; only the claim holder may report, once (an
        identical retry is accepted)."""
        _check_claim_id(report.claim_id)
        summary = report.summary[:MAX_SUMMARY]
        for _ in range(20):
            record = await self._read(call_id, by)
            call = call_from(record)
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
            details: dict[str, object] = {
                "claim_id": report.claim_id,
                "outcome": report.outcome,
                "summary": summary,
            }
            audit = self._audit(record, by, "executed", details)
            done = execution.model_copy(
                update={"outcome": report.outcome, "summary": summary, "finished_at": dt(audit.at)}
            )
            new_status = status.model_copy(update={"execution": done})
            written = await self.ledger.commit(
                record, new_status.model_dump_json(), audit, "executed"
            )
            if written is not None:
                return call_from(written)
        raise ConflictError(f"function call {call_id!r} kept changing; try again")
