"""Requests held in this process; decisions given programmatically (``respond``/``answer``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

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


Item = TypeVar("Item", FunctionCall, HumanContact)


class _Kept(Generic[Item]):
    """The requests of one kind (function calls or human contacts) in a dict, under the
    backend's condition: creation by call id, reads, waits and decisions."""

    def __init__(
        self,
        changed: threading.Condition,
        items: dict[str, Item],
        status: type[FunctionCallStatus] | type[HumanContactStatus],
        noun: str,
    ) -> None:
        self.changed = changed
        self.items: dict[str, Item] = items
        self.status = status
        self.noun = noun

    def create(self, item: Item, same: Callable[[Item, Item], bool]) -> Item:
        with self.changed:
            existing = self.items.get(item.call_id)
            if existing is not None:
                if not same(existing, item):
                    raise ConflictError(
                        f"call id {item.call_id!r} already names a different request"
                    )
                return existing.model_copy(deep=True)
            requested = _now()
            timeout = item.spec.timeout_seconds
            expires = requested + timedelta(seconds=timeout) if timeout else None
            stored = item.model_copy(
                update={"status": self.status(requested_at=requested, expires_at=expires)},
                deep=True,
            )
            self.items[item.call_id] = stored
            return stored.model_copy(deep=True)

    def get(self, call_id: str) -> Item:
        with self.changed:
            return self.held(call_id).model_copy(deep=True)

    def wait(self, call_id: str, timeout: float | None) -> Item:
        with self.changed:
            self.changed.wait_for(lambda: self.held(call_id).completed, timeout)
            return self.held(call_id).model_copy(deep=True)

    def decide(self, call_id: str, done: str, **decision: Any) -> Item:
        """Record the decision (``done``: what a decided one is called, for the refusal)."""
        with self.changed:
            item = self.held(call_id)
            if item.completed:
                raise ConflictError(f"{self.noun} {call_id!r} is already {done}")
            status = item.status or self.status(requested_at=_now())
            decided = item.model_copy(
                update={"status": status.model_copy(update={"responded_at": _now(), **decision})}
            )
            self.items[call_id] = decided
            self.changed.notify_all()
            return decided.model_copy(deep=True)

    def held(self, call_id: str) -> Item:
        try:
            return self.items[call_id]
        except KeyError:
            raise NotFoundError(
                f"no {self.noun} with call id {call_id!r}", status_code=404
            ) from None


class InMemoryBackend(Backend):
    """A thread-safe store of requests in memory.

    Decide from another thread or a test with :meth:`respond` (function calls) and
    :meth:`answer` (human contacts); waiting callers wake up at once.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._calls: dict[str, FunctionCall] = {}
        self._contacts: dict[str, HumanContact] = {}
        self._kept_calls = _Kept(self._changed, self._calls, FunctionCallStatus, "function call")
        self._kept_contacts = _Kept(
            self._changed, self._contacts, HumanContactStatus, "human contact"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(calls={len(self._calls)}, contacts={len(self._contacts)})"

    # ------------------------------------- requests: function calls and human contacts

    @property
    def function_calls(self) -> list[FunctionCall]:
        with self._changed:
            return [c.model_copy(deep=True) for c in self._calls.values()]

    @property
    def human_contacts(self) -> list[HumanContact]:
        with self._changed:
            return [c.model_copy(deep=True) for c in self._contacts.values()]

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        # A request is its call id, function and arguments: another run id (a restarted agent)
        # resumes it.
        return self._kept_calls.create(call, _same_call)

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        return self._kept_contacts.create(contact, _same_contact)

    def get_function_call(self, call_id: str) -> FunctionCall:
        return self._kept_calls.get(call_id)

    def get_human_contact(self, call_id: str) -> HumanContact:
        return self._kept_contacts.get(call_id)

    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        return self._kept_calls.wait(call_id, timeout)

    def wait_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        return self._kept_contacts.wait(call_id, timeout)

    # ------------------------------------------------------------------ decisions

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
        decision = {
            "approved": approved,
            "comment": comment,
            "reject_option_name": reject_option_name,
            "edited_kwargs": edited_kwargs,
            "response": response,
            "responded_by": responded_by,
        }
        return self._kept_calls.decide(call_id, "decided", **decision)

    def expire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        with self._changed:
            if self._call(call_id).completed:
                return self._call(call_id).model_copy(deep=True)
        try:
            return self._kept_calls.decide(
                call_id, "decided", approved=False, comment=reason, expired=True
            )
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

    def _call(self, call_id: str) -> FunctionCall:
        return self._kept_calls.held(call_id)

    # ------------------------------------------------------------ human contacts

    def answer(
        self,
        call_id: str,
        response: str,
        *,
        response_option_name: str | None = None,
        responded_by: str | None = None,
    ) -> HumanContact:
        """Answer a pending human contact."""
        answered = {"response_option_name": response_option_name, "responded_by": responded_by}
        return self._kept_contacts.decide(call_id, "answered", response=response, **answered)

    def expire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        try:
            return self._kept_contacts.decide(call_id, "answered", expired=True)
        except ConflictError:
            return self.get_human_contact(call_id)

    def _contact(self, call_id: str) -> HumanContact:
        return self._kept_contacts.held(call_id)


def _same_call(held: FunctionCall, sent: FunctionCall) -> bool:
    return held.spec.fn == sent.spec.fn and held.spec.kwargs == sent.spec.kwargs


def _same_contact(held: HumanContact, sent: HumanContact) -> bool:
    return held.spec == sent.spec
