"""The one interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

from functionlayer._models import (
    ClaimedCall,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    HumanContact,
)

__all__ = ["Backend"]


class Backend(ABC):
    """Stores requests and waits for decisions.

    ``create_*`` is idempotent per ``call_id``: creating the same request twice returns the
    existing one, even under another ``run_id`` (a restarted agent resumes its request); a
    different function or different arguments under the same id raise :class:`ConflictError`.

    ``claim_execution``/``report_execution`` make one approval authorise at most one run of the
    function's body, across retries, duplicate call ids and restarted agents.

    ``wait_*`` returns as soon as the request is decided, or the current (pending) state once
    ``timeout`` seconds have passed; it never decides anything itself. Errors that cannot be
    retried away raise a :class:`~functionlayer.FunctionLayerError`.

    Async twins default to running the sync method in a worker thread; backends with native
    async I/O override them.
    """

    #: Whether requests outlive this process (a server holds them, so an approver may still
    #: see and decide one the agent gave up on). False for the terminal and in-memory backends.
    keeps_requests: bool = False

    # By operation, the two kinds of request (function calls, human contacts) side by side.

    @abstractmethod
    def create_function_call(self, call: FunctionCall) -> FunctionCall: ...

    @abstractmethod
    def create_human_contact(self, contact: HumanContact) -> HumanContact: ...

    @abstractmethod
    def get_function_call(self, call_id: str) -> FunctionCall: ...

    @abstractmethod
    def get_human_contact(self, call_id: str) -> HumanContact: ...

    @abstractmethod
    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall: ...

    @abstractmethod
    def wait_human_contact(self, call_id: str, timeout: float | None) -> HumanContact: ...

    @abstractmethod
    def expire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        """Reject a still-pending call for good (its deadline passed) and return the final state.

        Atomic: if a decision arrived first, that decision is returned unchanged, so a late
        answer can never resurrect an expired call nor an expiry overwrite an answer.
        """

    @abstractmethod
    def expire_human_contact(self, call_id: str, reason: str) -> HumanContact: ...

    @abstractmethod
    def claim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        """Claim the one execution an approved call authorises, before its body runs.

        Atomic compare-and-set: the first claim is ``granted`` and recorded (with its start
        time); a retry with the same ``claim_id`` is granted again (the same claim); any other
        claim is not granted and gets the recorded execution, so the caller can tell the LLM
        that the call already ran. A claim on a call that is not approved (pending, rejected,
        answered instead, expired) raises :class:`~functionlayer.ConflictError`.
        """

    @abstractmethod
    def report_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        """Record how the claimed execution ended (``report.claim_id`` must hold the claim).

        A repeated identical report is accepted (retries); a different one, or one from a
        claim that does not hold the execution, raises :class:`~functionlayer.ConflictError`.
        """

    def wait_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> ClaimedCall:
        """``wait_function_call``, and when the call comes back approved as proposed, its
        execution claimed under ``claim_id`` (the same compare-and-set as ``claim_execution``).

        ``claim`` is ``None`` when nothing was claimed: the call is still pending, was not
        approved, or was approved with edits — the caller checks those, then claims. This
        default waits only (the caller then claims: two steps); backends that can do both in
        one round trip (the HTTP backend against a FunctionLayer server) override it."""
        return ClaimedCall(call=self.wait_function_call(call_id, timeout))

    async def await_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> ClaimedCall:
        return ClaimedCall(call=await self.await_function_call(call_id, timeout))

    def abandon_function_call(self, call_id: str) -> FunctionCall | None:
        """Tell the backend the agent stopped waiting for this call (Ctrl-C, the program
        ends): a pending request is then expired for good and marked abandoned; a decided one
        stays decided (:class:`~functionlayer.ConflictError`). ``None``: this backend keeps no
        request beyond the process, there is nobody to tell."""
        return None

    def abandon_human_contact(self, call_id: str) -> HumanContact | None:
        return None

    async def aclaim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        import functools

        return await _to_thread(
            functools.partial(self.claim_execution, call_id, claim_id, claimed_by=claimed_by)
        )

    async def areport_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        return await _to_thread(self.report_execution, call_id, report)

    async def aexpire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        return await _to_thread(self.expire_function_call, call_id, reason)

    async def aexpire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        return await _to_thread(self.expire_human_contact, call_id, reason)

    async def acreate_function_call(self, call: FunctionCall) -> FunctionCall:
        return await _to_thread(self.create_function_call, call)

    async def acreate_human_contact(self, contact: HumanContact) -> HumanContact:
        return await _to_thread(self.create_human_contact, contact)

    async def aget_function_call(self, call_id: str) -> FunctionCall:
        return await _to_thread(self.get_function_call, call_id)

    async def aget_human_contact(self, call_id: str) -> HumanContact:
        return await _to_thread(self.get_human_contact, call_id)

    async def await_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        return await _to_thread(self.wait_function_call, call_id, timeout)

    async def await_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        return await _to_thread(self.wait_human_contact, call_id, timeout)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""

    async def aclose(self) -> None:
        self.close()


T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def _to_thread(fn: Callable[[*Ts], T], *args: *Ts) -> T:
    import asyncio  # not at import time: asyncio costs ~100 modules

    return await asyncio.to_thread(fn, *args)
