"""The request API under :class:`~functionlayer.FunctionLayer`: create, read and wait for
function calls and human contacts, sync and async, each answer checked against the request
sent; a wait on a server stops cleanly on Ctrl-C.

What a request is and how a wait ends is written once (``_new_call``, ``_grouped_specs``,
``_Deadline``); the sync and async methods are thin loops around it, one pair for both kinds of
request (``_wait_for`` and ``_await_for``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from functionlayer._backends._base import Backend
from functionlayer._channel_models import ContactChannel
from functionlayer._context import current_call_id, current_group_id, new_group_id
from functionlayer._ids import check_same_contact, check_same_request, new_id
from functionlayer._models import (
    ClaimedCall,
    ExecutionClaim,
    FunctionCall,
    FunctionCallSpec,
    HumanContact,
    HumanContactSpec,
)
from functionlayer._stopping import Stoppable

__all__ = ["UNSET", "RequestAPI", "afetch_claimed", "fetch_claimed"]

UNSET: Any = object()
"""A timeout not given (``None`` means no timeout)."""
_UNSET = UNSET
_Claim = tuple[str, str | None]
"""A claim to make while waiting: (claim id, claimant)."""
_Request = TypeVar("_Request", FunctionCall, HumanContact)
_Polled = tuple[_Request, ExecutionClaim | None]
"""What one wait on the backend gives: the request as it is now, and the claim it made."""


class RequestAPI:
    """The lower-level request API of :class:`~functionlayer.FunctionLayer` (its base class)."""

    backend: Backend
    run_id: str
    timeout: float | None
    contact_channel: ContactChannel | None
    redact_outcome: Callable[[Any], str] | None
    group_id: str | None

    # ------------------------------------------------------- function calls, sync

    def create_function_call(
        self, spec: FunctionCallSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> FunctionCall:
        """Send a request without waiting. Idempotent per ``call_id``. Inside ``group_scope``
        a spec without a group id gets the scope's."""
        call = self._new_call(spec, call_id, run_id)
        return check_same_request(call, self.backend.create_function_call(call))

    def get_function_call(self, call_id: str) -> FunctionCall:
        return self.backend.get_function_call(call_id)

    def create_function_calls(
        self,
        specs: Sequence[FunctionCallSpec],
        call_ids: Sequence[str | None] | None = None,
        *,
        group_id: str | None = None,
    ) -> list[FunctionCall]:
        """Send a model turn's requests as one review group (``group_id``, a new one unless
        given), without waiting: a person can review them on one page, and each keeps its own
        decision. Idempotent per call id."""
        grouped = _grouped_specs(specs, call_ids, group_id)
        return [self.create_function_call(spec, call_id) for spec, call_id in grouped]

    def fetch_approval(
        self,
        spec: FunctionCallSpec,
        call_id: str | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> FunctionCall:
        """Send a request and block until it is decided (or expires: then it is rejected).

        Raises a :class:`~functionlayer.FunctionLayerError` when no decision can be had.
        """
        return fetch_claimed(self, spec, call_id, timeout, None).call

    # ------------------------------------------------------ function calls, async

    async def acreate_function_call(
        self, spec: FunctionCallSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> FunctionCall:
        call = self._new_call(spec, call_id, run_id)
        return check_same_request(call, await self.backend.acreate_function_call(call))

    async def aget_function_call(self, call_id: str) -> FunctionCall:
        return await self.backend.aget_function_call(call_id)

    async def acreate_function_calls(
        self,
        specs: Sequence[FunctionCallSpec],
        call_ids: Sequence[str | None] | None = None,
        *,
        group_id: str | None = None,
    ) -> list[FunctionCall]:
        """The async twin of :meth:`create_function_calls`."""
        grouped = _grouped_specs(specs, call_ids, group_id)
        return [await self.acreate_function_call(spec, call_id) for spec, call_id in grouped]

    async def afetch_approval(
        self,
        spec: FunctionCallSpec,
        call_id: str | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> FunctionCall:
        return (await afetch_claimed(self, spec, call_id, timeout, None)).call

    # ------------------------------------------------------------ human contacts

    def create_human_contact(
        self, spec: HumanContactSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> HumanContact:
        contact = HumanContact(run_id=run_id or self.run_id, call_id=call_id or new_id(), spec=spec)
        return check_same_contact(contact, self.backend.create_human_contact(contact))

    def get_human_contact(self, call_id: str) -> HumanContact:
        return self.backend.get_human_contact(call_id)

    def fetch_human_response(
        self, spec: HumanContactSpec, call_id: str | None = None, *, timeout: float | None = _UNSET
    ) -> HumanContact:
        """Ask a human and block until they answer (or the request expires)."""
        wait = self._timeout_for(spec, timeout)
        contact = self.create_human_contact(spec, call_id or current_call_id())

        def poll(call_id: str, remaining: float | None) -> _Polled[HumanContact]:
            return self.backend.wait_human_contact(call_id, remaining), None

        expire = self.backend.expire_human_contact
        return self._wait_for(contact, wait, poll, expire, check_same_contact)[0]

    async def acreate_human_contact(
        self, spec: HumanContactSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> HumanContact:
        contact = HumanContact(run_id=run_id or self.run_id, call_id=call_id or new_id(), spec=spec)
        return check_same_contact(contact, await self.backend.acreate_human_contact(contact))

    async def aget_human_contact(self, call_id: str) -> HumanContact:
        return await self.backend.aget_human_contact(call_id)

    async def afetch_human_response(
        self, spec: HumanContactSpec, call_id: str | None = None, *, timeout: float | None = _UNSET
    ) -> HumanContact:
        wait = self._timeout_for(spec, timeout)
        contact = await self.acreate_human_contact(spec, call_id or current_call_id())

        async def poll(call_id: str, remaining: float | None) -> _Polled[HumanContact]:
            return await self.backend.await_human_contact(call_id, remaining), None

        expire = self.backend.aexpire_human_contact
        return (await self._await_for(contact, wait, poll, expire, check_same_contact))[0]

    # ------------------------------------------------------------- the two waits

    def _wait_for(
        self,
        request: _Request,
        wait: float | None,
        poll: Callable[[str, float | None], _Polled[_Request]],
        expire: Callable[[str, str], _Request],
        check: Callable[[_Request, _Request], _Request],
    ) -> _Polled[_Request]:
        """Poll until ``request`` is completed; at the deadline, expire it. Every answer is
        checked (``check``) against the request sent."""
        state = _Waiting(request, wait, check)
        with Stoppable(self.backend, request):
            for remaining in state.polls():
                state.take(poll(request.call_id, remaining))
            if state.expired:
                state.take((expire(request.call_id, state.reason), state.claimed))
        return state.request, state.claimed

    async def _await_for(
        self,
        request: _Request,
        wait: float | None,
        poll: Callable[[str, float | None], Awaitable[_Polled[_Request]]],
        expire: Callable[[str, str], Awaitable[_Request]],
        check: Callable[[_Request, _Request], _Request],
    ) -> _Polled[_Request]:
        """The async :meth:`_wait_for`."""
        state = _Waiting(request, wait, check)
        with Stoppable(self.backend, request):
            for remaining in state.polls():
                state.take(await poll(request.call_id, remaining))
            if state.expired:
                state.take((await expire(request.call_id, state.reason), state.claimed))
        return state.request, state.claimed

    def _new_call(
        self, spec: FunctionCallSpec, call_id: str | None, run_id: str | None
    ) -> FunctionCall:
        return FunctionCall(
            run_id=run_id or self.run_id,
            call_id=call_id or new_id(),
            spec=_grouped(spec, self.group_id),
        )

    # ------------------------------------------------------------------ plumbing

    def _timeout_for(
        self, spec: FunctionCallSpec | HumanContactSpec, timeout: float | None
    ) -> float | None:
        if timeout is not _UNSET:
            return timeout
        if spec.timeout_seconds is not None:
            return spec.timeout_seconds
        return self.timeout

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()


def fetch_claimed(
    client: RequestAPI,
    spec: FunctionCallSpec,
    call_id: str | None,
    timeout: float | None,
    claim: _Claim | None,
) -> ClaimedCall:
    """``fetch_approval``; with ``claim`` (claim id, claimant), the wait also claims the
    execution when the call is approved as proposed (one round trip where the backend
    can: ``ClaimedCall.claim``). What a guarded function waits with."""
    wait = client._timeout_for(spec, timeout)
    call = client.create_function_call(spec, call_id or current_call_id())

    def poll(call_id: str, remaining: float | None) -> _Polled[FunctionCall]:
        if claim is None:
            return client.backend.wait_function_call(call_id, remaining), None
        answer = client.backend.wait_and_claim_function_call(
            call_id, remaining, claim[0], claimed_by=claim[1]
        )
        return answer.call, answer.claim

    call, claimed = client._wait_for(
        call, wait, poll, client.backend.expire_function_call, check_same_request
    )
    return ClaimedCall(call=call, claim=claimed)


async def afetch_claimed(
    client: RequestAPI,
    spec: FunctionCallSpec,
    call_id: str | None,
    timeout: float | None,
    claim: _Claim | None,
) -> ClaimedCall:
    """The async :func:`fetch_claimed`."""
    wait = client._timeout_for(spec, timeout)
    call = await client.acreate_function_call(spec, call_id or current_call_id())

    async def poll(call_id: str, remaining: float | None) -> _Polled[FunctionCall]:
        if claim is None:
            return await client.backend.await_function_call(call_id, remaining), None
        answer = await client.backend.await_and_claim_function_call(
            call_id, remaining, claim[0], claimed_by=claim[1]
        )
        return answer.call, answer.claim

    call, claimed = await client._await_for(
        call, wait, poll, client.backend.aexpire_function_call, check_same_request
    )
    return ClaimedCall(call=call, claim=claimed)


class _Waiting(Generic[_Request]):
    """One wait for a request, without the I/O: how long each poll may wait, and where it
    stands after each answer (checked against the request sent)."""

    def __init__(
        self,
        request: _Request,
        wait: float | None,
        check: Callable[[_Request, _Request], _Request],
    ) -> None:
        self.request: _Request = request
        self.claimed: ExecutionClaim | None = None
        self.expired = False
        self.reason = (
            f"no human answered within {wait:g} seconds" if wait else "the request expired"
        )
        self._deadline = None if wait is None else time.monotonic() + wait
        self._check: Callable[[_Request, _Request], _Request] = check

    def polls(self) -> Iterator[float | None]:
        """How long each poll may wait (``None``: no limit), until the request is completed
        or the deadline passes (then ``expired``: the caller expires the request)."""
        while not self.request.completed:
            remaining = None if self._deadline is None else self._deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.expired = True
                return
            yield remaining

    def take(self, answer: _Polled[_Request]) -> None:
        got, self.claimed = answer
        self.request = self._check(self.request, got)


def _grouped_specs(
    specs: Sequence[FunctionCallSpec],
    call_ids: Sequence[str | None] | None,
    group_id: str | None,
) -> list[tuple[FunctionCallSpec, str | None]]:
    """A model turn's specs, each in the review group ``group_id`` (a new one unless given),
    paired with its call id."""
    group = group_id or new_group_id()
    ids = list(call_ids) if call_ids is not None else [None] * len(specs)
    if len(ids) != len(specs):
        raise ValueError("call_ids must have one entry per spec")
    grouped = [spec.model_copy(update={"group_id": group}) for spec in specs]
    return list(zip(grouped, ids, strict=True))


def _grouped(spec: FunctionCallSpec, default: str | None) -> FunctionCallSpec:
    group = current_group_id() or default
    if group is None or spec.group_id is not None:
        return spec
    return spec.model_copy(update={"group_id": group})
