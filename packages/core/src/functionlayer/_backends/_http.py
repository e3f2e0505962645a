"""The client of the FunctionLayer open protocol (docs/protocol.md).

Waits are long-polls (``GET ...?wait=S``: the server answers as soon as the status changes);
against a server that ignores ``wait`` it falls back to polling with capped exponential backoff
and jitter. Connection errors, timeouts, 429 and 5xx are retried with backoff for ``retry_for``
seconds; creation is idempotent by call id, so retrying it never makes a second request.

A server that this process has never reached is given only ``connect_timeout`` seconds
(``FUNCTIONLAYER_CONNECT_TIMEOUT``, default 5): a wrong URL or a server that is not running fails
in seconds with the URL in the message, while a server that answered once and then restarts is
waited for the whole ``retry_for``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from pydantic import BaseModel

from functionlayer import _interrupt
from functionlayer._backends._base import Backend
from functionlayer._backends._http_answers import (
    Decided,
    RouteMissing,
    call_path,
    claiming_path,
    contact_path,
    execution_path,
    expired_locally,
    expiry,
    without_claiming_wait,
)
from functionlayer._backends._http_send import HttpSending, connect_timeout_of
from functionlayer._errors import BackendError, ConflictError, NoHumanAvailableError
from functionlayer._models import (
    ClaimedCall,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    HumanContact,
)
from functionlayer._version import __version__

__all__ = ["HttpBackend"]

M = TypeVar("M", bound=BaseModel)

_USER_AGENT = f"functionlayer-python/{__version__}"


class HttpBackend(HttpSending, Backend):
    """Talks to a FunctionLayer server (or any server of the open protocol).

    ``base_url`` defaults to ``FUNCTIONLAYER_API_BASE`` and ``token`` to
    ``FUNCTIONLAYER_API_TOKEN``. Requests go through a lean keep-alive HTTP/1.1 client;
    ``transport``/``async_transport`` plug in custom httpx transports instead (for sync and
    async calls respectively), and a proxy environment variable that applies to ``base_url``
    makes it use httpx too (see ``_http_send``). While the server cannot be reached it retries for ``retry_for`` seconds and
    says so on the ``functionlayer`` logger (at once, then every 10 s); a server never reached
    in this process gets ``connect_timeout`` seconds (default ``FUNCTIONLAYER_CONNECT_TIMEOUT``,
    else 5) before the call fails with the URL in the message.
    """

    keeps_requests = True

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        request_timeout: float = 10.0,
        long_poll: float = 25.0,
        retry_for: float = 60.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        connect_timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("FUNCTIONLAYER_API_BASE")
        if not base_url:
            raise ValueError(
                "no FunctionLayer server configured: pass base_url= or set FUNCTIONLAYER_API_BASE "
                "(e.g. http://127.0.0.1:8080/functionlayer/v1)"
            )
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"FUNCTIONLAYER_API_BASE must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        token = token if token is not None else os.environ.get("FUNCTIONLAYER_API_TOKEN")
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.request_timeout = request_timeout
        self.long_poll = long_poll
        self.retry_for = retry_for
        self.connect_timeout = connect_timeout_of(connect_timeout)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._setup_sending(headers, transport, async_transport)
        _interrupt.install()  # from the main thread: Ctrl-C then ends waits on worker threads

    def __repr__(self) -> str:
        return f"HttpBackend(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ protocol

    # By operation, the two kinds of request (function calls, human contacts) side by side.

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        return self._send(FunctionCall, "POST", "/function_calls", body=call)

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        return self._send(HumanContact, "POST", "/contact_requests", body=contact)

    async def acreate_function_call(self, call: FunctionCall) -> FunctionCall:
        return await self._asend(FunctionCall, "POST", "/function_calls", body=call)

    async def acreate_human_contact(self, contact: HumanContact) -> HumanContact:
        return await self._asend(HumanContact, "POST", "/contact_requests", body=contact)

    def get_function_call(self, call_id: str) -> FunctionCall:
        return self._send(FunctionCall, "GET", call_path(call_id))

    def get_human_contact(self, call_id: str) -> HumanContact:
        return self._send(HumanContact, "GET", contact_path(call_id))

    async def aget_function_call(self, call_id: str) -> FunctionCall:
        return await self._asend(FunctionCall, "GET", call_path(call_id))

    async def aget_human_contact(self, call_id: str) -> HumanContact:
        return await self._asend(HumanContact, "GET", contact_path(call_id))

    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        return self._wait(FunctionCall, call_path(call_id), timeout)

    def wait_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        return self._wait(HumanContact, contact_path(call_id), timeout)

    async def await_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        return await self._await(FunctionCall, call_path(call_id), timeout)

    async def await_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        return await self._await(HumanContact, contact_path(call_id), timeout)

    def expire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        return self._expire(FunctionCall, call_id, reason, self.get_function_call)

    def expire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        return self._expire(HumanContact, call_id, reason, self.get_human_contact)

    async def aexpire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        return await self._aexpire(FunctionCall, call_id, reason, self.aget_function_call)

    async def aexpire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        return await self._aexpire(HumanContact, call_id, reason, self.aget_human_contact)

    def abandon_function_call(self, call_id: str) -> FunctionCall | None:
        """Tell the server the agent stopped waiting (Ctrl-C): one short try, no retries (the
        program is stopping). A decided request stays decided (``ConflictError``)."""
        return self._once(FunctionCall, call_path(call_id) + "/abandon")

    def abandon_human_contact(self, call_id: str) -> HumanContact | None:
        return self._once(HumanContact, contact_path(call_id) + "/abandon")

    # ------------------------------------------------------------------ executions

    def claim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        # Retried on network errors like creation: the claim id makes a retry the same claim.
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        return self._send(ExecutionClaim, "POST", execution_path(call_id), body=body)

    async def aclaim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        return await self._asend(ExecutionClaim, "POST", execution_path(call_id), body=body)

    def report_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        return self._send(FunctionCall, "POST", execution_path(call_id) + "/outcome", body=report)

    async def areport_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        return await self._asend(
            FunctionCall, "POST", execution_path(call_id) + "/outcome", body=report
        )

    def wait_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> ClaimedCall:
        """One round trip from the decision to the body: the long-poll claims the execution
        when the call is approved as proposed. A server without the route (older, or the
        predecessor's) is remembered and waited on the two-step way."""
        if self.base_url in without_claiming_wait:
            return super().wait_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        try:
            return self._wait(ClaimedCall, claiming_path(call_id), timeout, body=body)
        except RouteMissing:
            without_claiming_wait.add(self.base_url)
            return super().wait_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )

    async def await_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> ClaimedCall:
        if self.base_url in without_claiming_wait:
            return await super().await_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        try:
            return await self._await(ClaimedCall, claiming_path(call_id), timeout, body=body)
        except RouteMissing:
            without_claiming_wait.add(self.base_url)
            return await super().await_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )

    # ------------------------------------------------------------------- expiring

    def _expire(
        self, model: type[Decided], call_id: str, reason: str, get: Callable[[str], Decided]
    ) -> Decided:
        """Tell the server the agent's wait ran out (so the request is rejected as expired)."""
        path, status = expiry(model, call_id, reason)
        try:
            return self._send(model, "POST", path, body=status)
        except ConflictError:  # decided first: that decision stands
            return get(call_id)
        except BackendError:  # a server that refuses agent-side expiry: still reject locally
            return expired_locally(get(call_id), reason)

    async def _aexpire(
        self,
        model: type[Decided],
        call_id: str,
        reason: str,
        get: Callable[[str], Awaitable[Decided]],
    ) -> Decided:
        path, status = expiry(model, call_id, reason)
        try:
            return await self._asend(model, "POST", path, body=status)
        except ConflictError:
            return await get(call_id)
        except BackendError:
            return expired_locally(await get(call_id), reason)

    # ------------------------------------------------------------------- waiting

    def _wait(
        self, model: type[M], path: str, timeout: float | None, body: BaseModel | None = None
    ) -> M:
        """Long-poll ``path`` until the request is decided (``body``: POST it, a claiming wait)."""
        rounds = _Rounds(self, timeout)
        while True:
            wait = rounds.begin()
            item = self._send(model, rounds.method(body), path, body=body, **wait)
            pause = rounds.pause_after(item)
            if pause is None:
                return item
            if pause:
                _interrupt.stopping.wait(pause)

    async def _await(
        self, model: type[M], path: str, timeout: float | None, body: BaseModel | None = None
    ) -> M:
        rounds = _Rounds(self, timeout)
        while True:
            item = await self._asend(model, rounds.method(body), path, body=body, **rounds.begin())
            pause = rounds.pause_after(item)
            if pause is None:
                return item
            if pause:
                await asyncio.sleep(pause)


class _Rounds:
    """The long-polls of one wait: how long each asks the server to hold it, and the pause
    after one the server did not hold (a server that ignores ``?wait=``)."""

    def __init__(self, backend: HttpBackend, timeout: float | None) -> None:
        self.long_poll = backend.long_poll
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.pacing = _PollPacing(backend.backoff_initial, backend.backoff_max)
        self.wait = self.started = 0.0

    @staticmethod
    def method(body: BaseModel | None) -> str:
        return "GET" if body is None else "POST"

    def begin(self) -> dict[str, float | None]:
        """The next long-poll's ``wait`` and ``deadline`` (refused once Ctrl-C was pressed)."""
        _check_not_stopping()
        remaining = _remaining(self.deadline)
        wait = self.long_poll if remaining is None else min(self.long_poll, remaining)
        self.wait = round(wait, 3) if wait >= 0.05 else 0.0
        self.started = time.monotonic()
        return {"wait": self.wait, "deadline": self.deadline}

    def pause_after(self, item: BaseModel) -> float | None:
        """``None``: the wait is over (decided, or out of time); else seconds to pause."""
        if _completed(item) or _remaining(self.deadline) == 0:
            return None
        elapsed = time.monotonic() - self.started
        return self.pacing.after(elapsed, self.wait, _remaining(self.deadline))


def _check_not_stopping() -> None:
    if _interrupt.stopping.is_set():
        raise NoHumanAvailableError("interrupted (Ctrl-C): the program is stopping")


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _completed(item: FunctionCall | HumanContact | BaseModel) -> bool:
    if isinstance(item, ClaimedCall):
        item = item.call
    return bool(getattr(item, "completed", False))


class _PollPacing:
    """Detects a server that ignores ``?wait=`` and paces the polls it then needs."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap, self.delay = initial, cap, initial

    def after(self, elapsed: float, asked: float, remaining: float | None) -> float:
        if asked >= 0.2 and elapsed >= asked * 0.5:
            self.delay = self.initial  # the server held the request: long-polling works
            return 0.0
        pause = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.cap, self.delay * 2)
        return pause if remaining is None else min(pause, remaining)
