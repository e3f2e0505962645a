"""Requests held in this process; decisions given programmatically (``respond``/``answer``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from functionlayer._backends._base import Backend
from functionlayer._errors import ConflictError, NotFoundError
from functionlayer._models import (
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
)

__all__ = ["InMemoryBackend"]


_MAX_SUMMARY = 500


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryBackend(Backend):
    """A thread-safe store of requests in memory.

    Decide from another thread or a test with :meth:`respond` (function calls) and
    :meth:`answer` (human contacts); waiting callers wake up at once.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._calls: dict[str, FunctionCall] = {}
        self._contacts: dict[str, HumanContact] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(calls={len(self._calls)}, contacts={len(self._contacts)})"

    # ------------------------------------------------------------ function calls

    @property
    def function_calls(self) -> list[FunctionCall]:
        with self._changed:
            return [c.model_copy(deep=True) for c in self._calls.values()]

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        with self._changed:
            existing = self._calls.get(call.call_id)
            if existing is not None:
                # A request is its call id, function and arguments: another run id (a restarted
                # agent) resumes it.
                if existing.spec.fn != call.spec.fn or existing.spec.kwargs != call.spec.kwargs:
                    raise ConflictError(
                        f"call id {call.call_id!r} already names a different request"
                    )
                return existing.model_copy(deep=True)
            requested = _now()
            timeout = call.spec.timeout_seconds
            stored = call.model_copy(
                update={
                    "status": FunctionCallStatus(
                        requested_at=requested,
                        expires_at=requested + timedelta(seconds=timeout) if timeout else None,
                    )
                },
                deep=True,
            )
            self._calls[call.call_id] = stored
            return stored.model_copy(deep=True)

    def get_function_call(self, call_id: str) -> FunctionCall:
        with self._changed:
            return self._call(call_id).model_copy(deep=True)

    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        with self._changed:
            self._changed.wait_for(lambda: self._call(call_id).completed, timeout)
            return self._call(call_id).model_copy(deep=True)

    def respond(
        self,
        call_id: str,
        *,
        approved: bool,
        comment: str | None = None,
        reject_option_name: str | None = None,
        edited_kwargs: dict[str, Any] | None = None,
        response: str | None = None,
        responded_by: str | None = None,
    ) -> FunctionCall:
        """Decide a pending function call. A decided call cannot be decided again."""
        if approved and response is not None:
            raise ValueError("a response instead of running the function is not an approval")
        if not approved and edited_kwargs is not None:
            raise ValueError("edited arguments only go with an approval")
        return self._decide_call(
            call_id,
            approved=approved,
            comment=comment,
            reject_option_name=reject_option_name,
            edited_kwargs=edited_kwargs,
            response=response,
            responded_by=responded_by,
        )

    def expire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        with self._changed:
            if self._call(call_id).completed:
                return self._call(call_id).model_copy(deep=True)
        try:
            return self._decide_call(call_id, approved=False, comment=reason, expired=True)
        except ConflictError:  # answered in between: the answer stands
            return self.get_function_call(call_id)

    # ------------------------------------------------------------------ executions

    def claim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        with self._changed:
            call = self._call(call_id)
            status = call.status
            if status is None or status.approved is not True:
                raise ConflictError(
                    f"function call {call_id!r} is not approved: its execution cannot be claimed",
                    status_code=409,
                )
            if status.execution is not None:
                granted = status.execution.claim_id == claim_id
                return ExecutionClaim(granted=granted, execution=status.execution.model_copy())
            execution = Execution(claim_id=claim_id, claimed_by=claimed_by, started_at=_now())
            self._calls[call_id] = call.model_copy(
                update={"status": status.model_copy(update={"execution": execution})}
            )
            self._changed.notify_all()
            return ExecutionClaim(granted=True, execution=execution.model_copy())

    def report_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        with self._changed:
            call = self._call(call_id)
            status = call.status
            execution = status.execution if status is not None else None
            if status is None or execution is None or execution.claim_id != report.claim_id:
                raise ConflictError(
                    f"function call {call_id!r}: this claim does not hold its execution",
                    status_code=409,
                )
            summary = report.summary[:_MAX_SUMMARY]
            if execution.outcome is not None:
                if (execution.outcome, execution.summary) == (report.outcome, summary):
                    return call.model_copy(deep=True)  # a retried report
                raise ConflictError(
                    f"function call {call_id!r}: its outcome was already reported",
                    status_code=409,
                )
            done = execution.model_copy(
                update={"outcome": report.outcome, "summary": summary, "finished_at": _now()}
            )
            self._calls[call_id] = call.model_copy(
                update={"status": status.model_copy(update={"execution": done})}
            )
            self._changed.notify_all()
            return self._calls[call_id].model_copy(deep=True)

    def _decide_call(self, call_id: str, **decision: Any) -> FunctionCall:
        with self._changed:
            call = self._call(call_id)
            if call.completed:
                raise ConflictError(f"function call {call_id!r} is already decided")
            status = call.status or FunctionCallStatus(requested_at=_now())
            decided = call.model_copy(
                update={"status": status.model_copy(update={"responded_at": _now(), **decision})}
            )
            self._calls[call_id] = decided
            self._changed.notify_all()
            return decided.model_copy(deep=True)

    def _call(self, call_id: str) -> FunctionCall:
        try:
            return self._calls[call_id]
        except KeyError:
            raise NotFoundError(
                f"no function call with call id {call_id!r}", status_code=404
            ) from None

    # ------------------------------------------------------------ human contacts

    @property
    def human_contacts(self) -> list[HumanContact]:
        with self._changed:
            return [c.model_copy(deep=True) for c in self._contacts.values()]

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        with self._changed:
            existing = self._contacts.get(contact.call_id)
            if existing is not None:
                if existing.spec != contact.spec:
                    raise ConflictError(
                        f"call id {contact.call_id!r} already names a different request"
                    )
                return existing.model_copy(deep=True)
            requested = _now()
            timeout = contact.spec.timeout_seconds
            stored = contact.model_copy(
                update={
                    "status": HumanContactStatus(
                        requested_at=requested,
                        expires_at=requested + timedelta(seconds=timeout) if timeout else None,
                    )
                },
                deep=True,
            )
            self._contacts[contact.call_id] = stored
            return stored.model_copy(deep=True)

    def get_human_contact(self, call_id: str) -> HumanContact:
        with self._changed:
            return self._contact(call_id).model_copy(deep=True)

    def wait_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        with self._changed:
            self._changed.wait_for(lambda: self._contact(call_id).completed, timeout)
            return self._contact(call_id).model_copy(deep=True)

    def answer(
        self,
        call_id: str,
        response: str,
        *,
        response_option_name: str | None = None,
        responded_by: str | None = None,
    ) -> HumanContact:
        """Answer a pending human contact."""
        return self._decide_contact(
            call_id,
            response=response,
            response_option_name=response_option_name,
            responded_by=responded_by,
        )

    def expire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        try:
            return self._decide_contact(call_id, expired=True)
        except ConflictError:
            return self.get_human_contact(call_id)

    def _decide_contact(self, call_id: str, **decision: Any) -> HumanContact:
        with self._changed:
            contact = self._contact(call_id)
            if contact.completed:
                raise ConflictError(f"human contact {call_id!r} is already answered")
            status = contact.status or HumanContactStatus(requested_at=_now())
            decided = contact.model_copy(
                update={"status": status.model_copy(update={"responded_at": _now(), **decision})}
            )
            self._contacts[call_id] = decided
            self._changed.notify_all()
            return decided.model_copy(deep=True)

    def _contact(self, call_id: str) -> HumanContact:
        try:
            return self._contacts[call_id]
        except KeyError:
            raise NotFoundError(
                f"no human contact with call id {call_id!r}", status_code=404
            ) from None
