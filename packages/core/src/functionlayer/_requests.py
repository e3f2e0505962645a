"""The request API under :class:`~functionlayer.FunctionLayer`: create, read and wait for
function calls and human contacts, sync and async, each answer checked against the request
sent; a wait on a server stops cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from functionlayer import _interrupt
from functionlayer._backends._base import Backend
from functionlayer._channel_models import ContactChannel
from functionlayer._context import current_call_id, current_group_id, new_group_id
from functionlayer._errors import ConflictError, NoHumanAvailableError
from functionlayer._ids import check_same_contact, check_same_request, new_id
from functionlayer._models import (
    ClaimedCall,
    ExecutionClaim,
    FunctionCall,
    FunctionCallSpec,
    HumanContact,
    HumanContactSpec,
)

__all__ = ["UNSET", "RequestAPI", "afetch_claimed", "fetch_claimed"]

UNSET: Any = object()
"""A timeout not given (``None`` means no timeout)."""
_UNSET = UNSET
_Claim = tuple[str, str | None]
"""A claim to make while waiting: (claim id, claimant)."""


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
        call = FunctionCall(
            run_id=run_id or self.run_id,
            call_id=call_id or new_id(),
            spec=_grouped(spec, self.group_id),
        )
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
        group = group_id or new_group_id()
        ids = list(call_ids) if call_ids is not None else [None] * len(specs)
        if len(ids) != len(specs):
            raise ValueError("call_ids must have one entry per spec")
        return [
            self.create_function_call(spec.model_copy(update={"group_id": group}), call_id)
            for spec, call_id in zip(specs, ids, strict=True)
        ]

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
        return self._fetch(spec, call_id, timeout, None).call

    def _fetch(
        self,
        spec: FunctionCallSpec,
        call_id: str | None,
        timeout: float | None,
        claim: _Claim | None,
    ) -> ClaimedCall:
        """``fetch_approval``; with ``claim`` (claim id, claimant), the wait also claims the
        execution when the call is approved as proposed (one round trip where the backend
        can: ``ClaimedCall.claim``)."""
        wait = self._timeout_for(spec, timeout)
        call = self.create_function_call(spec, call_id or current_call_id())
        deadline = None if wait is None else time.monotonic() + wait
        claimed: ExecutionClaim | None = None
        with self._stoppable(
            f"{spec.fn} was not run", self.backend.abandon_function_call, call.call_id
        ):
            while not call.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    call = check_same_request(
                        call, self.backend.expire_function_call(call.call_id, _expiry_reason(wait))
                    )
                    break
                if claim is None:
                    got = self.backend.wait_function_call(call.call_id, remaining)
                else:
                    answer = self.backend.wait_and_claim_function_call(
                        call.call_id, remaining, claim[0], claimed_by=claim[1]
                    )
                    got, claimed = answer.call, answer.claim
                call = check_same_request(call, got)
        return ClaimedCall(call=call, claim=claimed)

    # ------------------------------------------------------ function calls, async

    async def acreate_function_call(
        self, spec: FunctionCallSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> FunctionCall:
        call = FunctionCall(
            run_id=run_id or self.run_id,
            call_id=call_id or new_id(),
            spec=_grouped(spec, self.group_id),
        )
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
        group = group_id or new_group_id()
        ids = list(call_ids) if call_ids is not None else [None] * len(specs)
        if len(ids) != len(specs):
            raise ValueError("call_ids must have one entry per spec")
        return [
            await self.acreate_function_call(spec.model_copy(update={"group_id": group}), call_id)
            for spec, call_id in zip(specs, ids, strict=True)
        ]

    async def afetch_approval(
        self,
        spec: FunctionCallSpec,
        call_id: str | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> FunctionCall:
        return (await self._afetch(spec, call_id, timeout, None)).call

    async def _afetch(
        self,
        spec: FunctionCallSpec,
        call_id: str | None,
        timeout: float | None,
        claim: _Claim | None,
    ) -> ClaimedCall:
        wait = self._timeout_for(spec, timeout)
        call = await self.acreate_function_call(spec, call_id or current_call_id())
        deadline = None if wait is None else time.monotonic() + wait
        claimed: ExecutionClaim | None = None
        with self._stoppable(
            f"{spec.fn} was not run", self.backend.abandon_function_call, call.call_id
        ):
            while not call.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    call = check_same_request(
                        call,
                        await self.backend.aexpire_function_call(
                            call.call_id, _expiry_reason(wait)
                        ),
                    )
                    break
                if claim is None:
                    got = await self.backend.await_function_call(call.call_id, remaining)
                else:
                    answer = await self.backend.await_and_claim_function_call(
                        call.call_id, remaining, claim[0], claimed_by=claim[1]
                    )
                    got, claimed = answer.call, answer.claim
                call = check_same_request(call, got)
        return ClaimedCall(call=call, claim=claimed)

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
        deadline = None if wait is None else time.monotonic() + wait
        with self._stoppable(
            "the question was not answered", self.backend.abandon_human_contact, contact.call_id
        ):
            while not contact.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    contact = check_same_contact(
                        contact,
                        self.backend.expire_human_contact(contact.call_id, _expiry_reason(wait)),
                    )
                    break
                contact = check_same_contact(
                    contact, self.backend.wait_human_contact(contact.call_id, remaining)
                )
        return contact

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
        deadline = None if wait is None else time.monotonic() + wait
        with self._stoppable(
            "the question was not answered", self.backend.abandon_human_contact, contact.call_id
        ):
            while not contact.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    contact = check_same_contact(
                        contact,
                        await self.backend.aexpire_human_contact(
                            contact.call_id, _expiry_reason(wait)
                        ),
                    )
                    break
                contact = check_same_contact(
                    contact, await self.backend.await_human_contact(contact.call_id, remaining)
                )
        return contact

    # ------------------------------------------------------------------ plumbing

    def _timeout_for(
        self, spec: FunctionCallSpec | HumanContactSpec, timeout: float | None
    ) -> float | None:
        if timeout is not _UNSET:
            return timeout
        if spec.timeout_seconds is not None:
            return spec.timeout_seconds
        return self.timeout

    @contextlib.contextmanager
    def _stoppable(
        self, what: str, abandon: Callable[[str], object], call_id: str
    ) -> Iterator[None]:
        """A wait on a backend that keeps requests (a server): Ctrl-C ends it and tells the
        backend the request was abandoned (see ``functionlayer._interrupt``)."""
        if not self.backend.keeps_requests:
            yield
            return
        end = functools.partial(_abandon, abandon, call_id)
        try:
            with _interrupt.waiting(what, end):
                _check_not_stopping()
                yield
            _check_not_stopping()  # decided just before Ctrl-C: still nothing runs
        except KeyboardInterrupt:  # the host's own Ctrl-C handling reached this wait
            end()
            raise

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
    """What a guarded function waits with: ``fetch_approval`` that also claims the execution
    when the call is approved as proposed (one round trip where the backend can)."""
    return client._fetch(spec, call_id, timeout, claim)


async def afetch_claimed(
    client: RequestAPI,
    spec: FunctionCallSpec,
    call_id: str | None,
    timeout: float | None,
    claim: _Claim | None,
) -> ClaimedCall:
    """The async :func:`fetch_claimed`."""
    return await client._afetch(spec, call_id, timeout, claim)


def _check_not_stopping() -> None:
    if _interrupt.stopping.is_set():
        raise NoHumanAvailableError("interrupted (Ctrl-C): the program is stopping")


def _abandon(abandon: Callable[[str], object], call_id: str) -> str:
    """Tell the backend the agent stopped waiting; what the Ctrl-C line adds about it."""
    try:
        abandon(call_id)
    except ConflictError:
        return "; it had been decided just before"
    except Exception:
        return "; the server could not be told, so the request stays pending there"
    return "; the request is marked abandoned on the server"


def _expiry_reason(timeout: float | None) -> str:
    return f"no human answered within {timeout:g} seconds" if timeout else "the request expired"


def _grouped(spec: FunctionCallSpec, default: str | None) -> FunctionCallSpec:
    group = current_group_id() or default
    if group is None or spec.group_id is not None:
        return spec
    return spec.model_copy(update={"group_id": group})
