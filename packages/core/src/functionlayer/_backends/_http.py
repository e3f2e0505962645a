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
import logging
import os
import random
import re
import ssl
import time
import weakref
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ValidationError

from functionlayer import __version__, _interrupt
from functionlayer._backends._base import Backend
from functionlayer._errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    FunctionLayerError,
    MalformedResponseError,
    NoHumanAvailableError,
    NotFoundError,
)
from functionlayer._models import (
    ClaimedCall,
    Execution,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
)

__all__ = ["HttpBackend"]

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("functionlayer")

#: The API paths of the protocol: a base URL ending otherwise is probably missing it.
_API_PATHS = ("/functionlayer/v1", "/humanlayer/v1")

_USER_AGENT = f"functionlayer-python/{__version__}"

#: Default of ``connect_timeout`` when neither the argument nor FUNCTIONLAYER_CONNECT_TIMEOUT says.
DEFAULT_CONNECT_TIMEOUT = 5.0

#: Seconds for telling the server a request was abandoned (one try: the program is stopping).
ABANDON_TIMEOUT = 0.8

#: The base URLs that answered at least once in this process (any HTTP answer counts).
_reached: set[str] = set()


def _connect_timeout(value: float | None) -> float:
    if value is None:
        raw = os.environ.get("FUNCTIONLAYER_CONNECT_TIMEOUT", "").strip()
        if not raw:
            return DEFAULT_CONNECT_TIMEOUT
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(
                f"FUNCTIONLAYER_CONNECT_TIMEOUT must be a number of seconds, got {raw!r}"
            ) from None
    if not value > 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds, got {value!r}")
    return value


class _Backoff:
    """Capped exponential backoff with jitter, bounded by an overall deadline."""

    def __init__(self, initial: float, cap: float, give_up_at: float) -> None:
        self.initial, self.cap, self.give_up_at = initial, cap, give_up_at
        self.attempt = 0

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to sleep before the next try, or ``None`` when it is time to give up."""
        delay = min(self.cap, self.initial * (2.0**self.attempt)) * random.uniform(0.5, 1.0)
        self.attempt += 1
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap * 4))
        if time.monotonic() + delay > self.give_up_at:
            return None
        return delay


class _OutageLog:
    """Says on the ``functionlayer`` logger that the server cannot be reached: at the first
    failure, then every ``EVERY`` seconds, with the time left before giving up."""

    EVERY = 10.0

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.next_at: float | None = None

    def failed(self, error: FunctionLayerError, give_up_at: float) -> None:
        now = time.monotonic()
        if self.next_at is not None and now < self.next_at:
            return
        self.next_at = now + self.EVERY
        left = max(0.0, give_up_at - now)
        log.warning(
            "FunctionLayer server at %s not answering (%s); retrying for %.0f s more",
            self.base_url,
            error,
            left,
        )


class HttpBackend(Backend):
    """Talks to a FunctionLayer server (or any server of the open protocol).

    ``base_url`` defaults to ``FUNCTIONLAYER_API_BASE`` and ``token`` to
    ``FUNCTIONLAYER_API_TOKEN``. ``transport``/``async_transport`` plug in custom httpx
    transports. While the server cannot be reached it retries for ``retry_for`` seconds and
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
        self._headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.request_timeout = request_timeout
        self.long_poll = long_poll
        self.retry_for = retry_for
        self.connect_timeout = _connect_timeout(connect_timeout)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # Long-polls hold a connection each: no pool cap, or thousands of waits would queue.
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        # Async clients per event loop (an httpx AsyncClient cannot cross loops), sharded: see
        # _AsyncClients.
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncClients] = (
            weakref.WeakKeyDictionary()
        )
        _interrupt.install()  # from the main thread: Ctrl-C then ends waits on worker threads

    def __repr__(self) -> str:
        return f"HttpBackend(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ protocol

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        return self._send(FunctionCall, "POST", "/function_calls", body=call)

    def get_function_call(self, call_id: str) -> FunctionCall:
        return self._send(FunctionCall, "GET", f"/function_calls/{quote(call_id, safe='')}")

    def wait_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        return self._wait(FunctionCall, f"/function_calls/{quote(call_id, safe='')}", timeout)

    def expire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        status = FunctionCallStatus(approved=False, comment=reason, expired=True)
        path = f"/agent/function_calls/{quote(call_id, safe='')}/respond"
        try:
            return self._send(FunctionCall, "POST", path, body=status)
        except ConflictError:  # decided first: that decision stands
            return self.get_function_call(call_id)
        except BackendError:  # a server that refuses agent-side expiry: still reject locally
            return _expired_locally(self.get_function_call(call_id), reason)

    def abandon_function_call(self, call_id: str) -> FunctionCall | None:
        """Tell the server the agent stopped waiting (Ctrl-C): one short try, no retries (the
        program is stopping). A decided request stays decided (``ConflictError``)."""
        return self._once(FunctionCall, f"/function_calls/{quote(call_id, safe='')}/abandon")

    def abandon_human_contact(self, call_id: str) -> HumanContact | None:
        return self._once(HumanContact, f"/contact_requests/{quote(call_id, safe='')}/abandon")

    def claim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        # Retried on network errors like creation: the claim id makes a retry the same claim.
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        return self._send(ExecutionClaim, "POST", _execution_path(call_id), body=body)

    def wait_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> ClaimedCall:
        """One round trip from the decision to the body: the long-poll claims the execution
        when the call is approved as proposed. A server without the route (older, or the
        predecessor's) is remembered and waited on the two-step way."""
        if self.base_url in _without_claiming_wait:
            return super().wait_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        try:
            return self._wait(ClaimedCall, _claiming_path(call_id), timeout, body=body)
        except _RouteMissing:
            _without_claiming_wait.add(self.base_url)
            return super().wait_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )

    async def await_and_claim_function_call(
        self, call_id: str, timeout: float | None, claim_id: str, *, claimed_by: str | None = None
    ) -> ClaimedCall:
        if self.base_url in _without_claiming_wait:
            return await super().await_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        try:
            return await self._await(ClaimedCall, _claiming_path(call_id), timeout, body=body)
        except _RouteMissing:
            _without_claiming_wait.add(self.base_url)
            return await super().await_and_claim_function_call(
                call_id, timeout, claim_id, claimed_by=claimed_by
            )

    def report_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        return self._send(FunctionCall, "POST", _execution_path(call_id) + "/outcome", body=report)

    async def aclaim_execution(
        self, call_id: str, claim_id: str, *, claimed_by: str | None = None
    ) -> ExecutionClaim:
        body = Execution(claim_id=claim_id, claimed_by=claimed_by)
        return await self._asend(ExecutionClaim, "POST", _execution_path(call_id), body=body)

    async def areport_execution(self, call_id: str, report: ExecutionReport) -> FunctionCall:
        return await self._asend(
            FunctionCall, "POST", _execution_path(call_id) + "/outcome", body=report
        )

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        return self._send(HumanContact, "POST", "/contact_requests", body=contact)

    def get_human_contact(self, call_id: str) -> HumanContact:
        return self._send(HumanContact, "GET", f"/contact_requests/{quote(call_id, safe='')}")

    def wait_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        return self._wait(HumanContact, f"/contact_requests/{quote(call_id, safe='')}", timeout)

    def expire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        path = f"/agent/human_contacts/{quote(call_id, safe='')}/respond"
        try:
            return self._send(HumanContact, "POST", path, body=HumanContactStatus(expired=True))
        except ConflictError:
            return self.get_human_contact(call_id)
        except BackendError:
            return _expired_locally(self.get_human_contact(call_id), reason)

    async def acreate_function_call(self, call: FunctionCall) -> FunctionCall:
        return await self._asend(FunctionCall, "POST", "/function_calls", body=call)

    async def aget_function_call(self, call_id: str) -> FunctionCall:
        return await self._asend(FunctionCall, "GET", f"/function_calls/{quote(call_id, safe='')}")

    async def await_function_call(self, call_id: str, timeout: float | None) -> FunctionCall:
        return await self._await(
            FunctionCall, f"/function_calls/{quote(call_id, safe='')}", timeout
        )

    async def aexpire_function_call(self, call_id: str, reason: str) -> FunctionCall:
        status = FunctionCallStatus(approved=False, comment=reason, expired=True)
        path = f"/agent/function_calls/{quote(call_id, safe='')}/respond"
        try:
            return await self._asend(FunctionCall, "POST", path, body=status)
        except ConflictError:
            return await self.aget_function_call(call_id)
        except BackendError:
            return _expired_locally(await self.aget_function_call(call_id), reason)

    async def acreate_human_contact(self, contact: HumanContact) -> HumanContact:
        return await self._asend(HumanContact, "POST", "/contact_requests", body=contact)

    async def aget_human_contact(self, call_id: str) -> HumanContact:
        return await self._asend(
            HumanContact, "GET", f"/contact_requests/{quote(call_id, safe='')}"
        )

    async def await_human_contact(self, call_id: str, timeout: float | None) -> HumanContact:
        return await self._await(
            HumanContact, f"/contact_requests/{quote(call_id, safe='')}", timeout
        )

    async def aexpire_human_contact(self, call_id: str, reason: str) -> HumanContact:
        path = f"/agent/human_contacts/{quote(call_id, safe='')}/respond"
        try:
            return await self._asend(
                HumanContact, "POST", path, body=HumanContactStatus(expired=True)
            )
        except ConflictError:
            return await self.aget_human_contact(call_id)
        except BackendError:
            return _expired_locally(await self.aget_human_contact(call_id), reason)

    # ------------------------------------------------------------------- waiting

    def _wait(
        self, model: type[M], path: str, timeout: float | None, body: BaseModel | None = None
    ) -> M:
        """Long-poll ``path`` until the request is decided (``body``: POST it, a claiming wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = _PollPacing(self.backoff_initial, self.backoff_max)
        method = "GET" if body is None else "POST"
        while True:
            _check_not_stopping()
            wait = self._wait_seconds(deadline)
            started = time.monotonic()
            item = self._send(model, method, path, body=body, wait=wait, deadline=deadline)
            if _completed(item) or _remaining(deadline) == 0:
                return item
            pause = poll.after(time.monotonic() - started, wait, _remaining(deadline))
            if pause:
                _interrupt.stopping.wait(pause)

    async def _await(
        self, model: type[M], path: str, timeout: float | None, body: BaseModel | None = None
    ) -> M:
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = _PollPacing(self.backoff_initial, self.backoff_max)
        method = "GET" if body is None else "POST"
        while True:
            _check_not_stopping()
            wait = self._wait_seconds(deadline)
            started = time.monotonic()
            item = await self._asend(model, method, path, body=body, wait=wait, deadline=deadline)
            if _completed(item) or _remaining(deadline) == 0:
                return item
            pause = poll.after(time.monotonic() - started, wait, _remaining(deadline))
            if pause:
                await asyncio.sleep(pause)

    def _wait_seconds(self, deadline: float | None) -> float:
        remaining = _remaining(deadline)
        wait = self.long_poll if remaining is None else min(self.long_poll, remaining)
        return round(wait, 3) if wait >= 0.05 else 0.0

    # --------------------------------------------------------------- the request

    def _request_args(
        self, method: str, path: str, body: BaseModel | None, wait: float | None
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "method": method,
            "url": self.base_url + path,
            "headers": self._headers,
            "timeout": httpx.Timeout(
                self.request_timeout,
                connect=min(self.request_timeout, self.connect_timeout),
                read=self.request_timeout + (wait or 0.0),
            ),
        }
        if wait:
            args["params"] = {"wait": f"{wait:g}"}
        if body is not None:
            # Null fields included, as the predecessor's clients and servers expect.
            args["content"] = body.model_dump_json()
            args["headers"] = {**self._headers, "Content-Type": "application/json"}
        return args

    def _unreachable(self, exc: httpx.TransportError, backoff: _Backoff, started: float) -> _Retry:
        message = (
            f"cannot reach the FunctionLayer server at {self.base_url}: {type(exc).__name__}: {exc}"
        )
        never = self.base_url not in _reached  # a wrong URL, or a server not running
        if never:
            backoff.give_up_at = min(backoff.give_up_at, started + self.connect_timeout)
            message += (
                f" (never reached from this process; gave up after {self.connect_timeout:g} s: "
                "check FUNCTIONLAYER_API_BASE and that the server runs, or set "
                "FUNCTIONLAYER_CONNECT_TIMEOUT to wait longer)"
            )
        return _Retry(BackendUnavailableError(message, never_reached=never), retry_after=None)

    def _answered(self, response: httpx.Response) -> httpx.Response:
        _reached.add(self.base_url)
        return response

    def _give_up_at(self, deadline: float | None) -> float:
        give_up = time.monotonic() + self.retry_for
        return give_up if deadline is None else min(give_up, max(deadline, time.monotonic() + 1.0))

    def _send(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        wait: float | None = None,
        deadline: float | None = None,
    ) -> M:
        started = time.monotonic()
        give_up_at = self._give_up_at(deadline)
        backoff = _Backoff(self.backoff_initial, self.backoff_max, give_up_at)
        outage = _OutageLog(self.base_url)
        args = self._request_args(method, path, body, wait)
        while True:
            try:
                response = self._answered(self._sync_client().request(**args))
                outcome = _interpret(model, response, self.base_url, _creates(method, path), path)
            except httpx.TransportError as exc:
                outcome = self._unreachable(exc, backoff, started)
            if not isinstance(outcome, _Retry):
                return outcome
            delay = backoff.next_delay(outcome.retry_after)
            if delay is None:
                raise outcome.error
            outage.failed(outcome.error, backoff.give_up_at)
            if _interrupt.stopping.wait(delay):  # Ctrl-C: no more retries
                raise outcome.error

    async def _asend(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        wait: float | None = None,
        deadline: float | None = None,
    ) -> M:
        started = time.monotonic()
        give_up_at = self._give_up_at(deadline)
        backoff = _Backoff(self.backoff_initial, self.backoff_max, give_up_at)
        outage = _OutageLog(self.base_url)
        args = self._request_args(method, path, body, wait)
        while True:
            try:
                response = self._answered(await self._async_clients().request(args))
                outcome = _interpret(model, response, self.base_url, _creates(method, path), path)
            except httpx.TransportError as exc:
                outcome = self._unreachable(exc, backoff, started)
            if not isinstance(outcome, _Retry):
                return outcome
            delay = backoff.next_delay(outcome.retry_after)
            if delay is None:
                raise outcome.error
            outage.failed(outcome.error, backoff.give_up_at)
            await asyncio.sleep(delay)
            if _interrupt.stopping.is_set():
                raise outcome.error

    def _once(self, model: type[M], path: str) -> M:
        """One POST on its own short-lived connection (not the shared pool, which the thread
        that was interrupted may hold), within ``ABANDON_TIMEOUT`` seconds."""
        client = httpx.Client(transport=self._transport, timeout=ABANDON_TIMEOUT)
        try:
            response = client.post(self.base_url + path, headers=self._headers)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(
                f"cannot reach the FunctionLayer server at {self.base_url}: {exc}"
            ) from None
        finally:
            if self._transport is None:  # a transport given to us stays open for the others
                client.close()
        outcome = _interpret(model, response, self.base_url)
        if isinstance(outcome, _Retry):
            raise outcome.error
        return outcome

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(transport=self._transport, limits=self._limits)
        return self._client

    def _async_clients(self) -> _AsyncClients:
        loop = asyncio.get_running_loop()
        clients = self._aclients.get(loop)
        if clients is None:
            clients = self._aclients[loop] = _AsyncClients(self._async_transport)
        return clients

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        self.close()
        clients = self._aclients.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose()


class _AsyncClients:
    """Small httpx AsyncClients, each request sent through the least busy one.

    httpcore's pool scans every connection for every queued request on each state change, so
    one client holding many concurrent long-polls costs CPU that grows with the cube of the
    concurrency (50 agents: ~55 cycles/s instead of hundreds). Shards of at most
    ``PER_CLIENT`` concurrent requests keep each scan short; a shard's cap equals its
    connection limit, so no request ever queues inside httpx.
    """

    PER_CLIENT = 8

    def __init__(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._busy: list[int] = []

    def _pick(self) -> int:
        if self._busy:
            index = min(range(len(self._busy)), key=self._busy.__getitem__)
            if self._busy[index] < self.PER_CLIENT:
                return index
        limits = httpx.Limits(
            max_connections=self.PER_CLIENT, max_keepalive_connections=self.PER_CLIENT
        )
        if self._ssl is None:  # loading the CA bundle costs ~40 ms: once, not per shard
            self._ssl = httpx.create_ssl_context()
        client = httpx.AsyncClient(transport=self._transport, limits=limits, verify=self._ssl)
        self._clients.append(client)
        self._busy.append(0)
        return len(self._clients) - 1

    async def request(self, args: dict[str, Any]) -> httpx.Response:
        index = self._pick()
        self._busy[index] += 1
        try:
            return await self._clients[index].request(**args)
        finally:
            self._busy[index] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._busy.clear()


class _Retry:
    def __init__(self, error: FunctionLayerError, retry_after: float | None) -> None:
        self.error, self.retry_after = error, retry_after


def _creates(method: str, path: str) -> bool:
    """Creating a request: something every agent token may do at a correct URL, so a 403 or a
    404 there is a setup mistake rather than an answer about one request."""
    return method == "POST" and path in ("/function_calls", "/contact_requests")


def _interpret(
    model: type[M],
    response: httpx.Response,
    base_url: str = "",
    creating: bool = False,
    path: str = "",
) -> M | _Retry:
    """A parsed model, a transient failure to retry, or a raised permanent error."""
    status = response.status_code
    if status in (404, 405) and path.endswith(_CLAIMING) and not _is_service_error(response):
        raise _RouteMissing(path)  # a server without the claiming wait, not a missing call
    if status == 429 or status >= 500:
        return _Retry(
            BackendUnavailableError(
                f"the FunctionLayer server answered {status}: {_detail(response)}"
            ),
            _retry_after(response),
        )
    if status >= 400:
        message = f"the FunctionLayer server refused the request ({status}): {_detail(response)}"
        if status == 404 and creating:
            raise ConfigurationError(
                message + _api_path_hint(base_url, wrong_path=True), status_code=status
            )
        if status == 404:
            raise NotFoundError(message + _api_path_hint(base_url), status_code=status)
        if status == 409:
            raise ConflictError(message, status_code=status)
        if status == 401:
            raise ConfigurationError(
                message
                + f" (check FUNCTIONLAYER_API_TOKEN: it must be a live token of {base_url})",
                status_code=status,
            )
        if status == 403 and creating:
            raise ConfigurationError(
                message + " (FUNCTIONLAYER_API_TOKEN must be an agent token: "
                "'functionlayer-server tokens create NAME', without --approver)",
                status_code=status,
            )
        raise BackendError(message, status_code=status)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise MalformedResponseError(
            f"the FunctionLayer server's answer ({status}) is not a valid {model.__name__}: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}; body starts {response.text[:120]!r}"
        ) from exc


_CLAIMING = "/claim_when_approved"
# Servers (by base URL) that answered that they have no claiming wait: waited on in two steps.
_without_claiming_wait: set[str] = set()


class _RouteMissing(Exception):
    """The server has no such route (an older FunctionLayer server, or the predecessor's)."""


def _claiming_path(call_id: str) -> str:
    return f"/function_calls/{quote(call_id, safe='')}{_CLAIMING}"


def _is_service_error(response: httpx.Response) -> bool:
    """A FunctionLayer server's own refusal carries a machine ``code`` (for example
    ``not_found`` for an unknown call id); a framework's unknown-route 404 does not."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "code" in body


def _execution_path(call_id: str) -> str:
    return f"/function_calls/{quote(call_id, safe='')}/execution"


def _api_path_hint(base_url: str, *, wrong_path: bool = False) -> str:
    """A 404 from a base URL without the API path (or with a misspelt one): the mistake, named,
    with the URL it should be."""
    if not base_url or base_url.endswith(_API_PATHS):
        return (
            f". Is {base_url} the URL of a FunctionLayer server? (FUNCTIONLAYER_API_BASE)"
            if wrong_path and base_url
            else ""
        )
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    misspelt = re.search(r"/[^/]+/v\d+$", path)  # e.g. /functionlayr/v1: replace, don't append
    if misspelt:
        fixed = urlunsplit(
            (parts.scheme, parts.netloc, path[: misspelt.start()] + _API_PATHS[0], "", "")
        )
        return (
            f". The server base URL {base_url} ends with {misspelt.group(0)}, not the API path "
            f"{_API_PATHS[0]}: FUNCTIONLAYER_API_BASE should be e.g. {fixed}"
        )
    return (
        f". The server base URL {base_url} does not end with the API path: "
        f"FUNCTIONLAYER_API_BASE should be e.g. {base_url}{_API_PATHS[0]}"
    )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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


_Decided = TypeVar("_Decided", FunctionCall, HumanContact)


def _expired_locally(item: _Decided, reason: str) -> _Decided:
    if item.completed:
        return item
    if isinstance(item, FunctionCall):
        status = (item.status or FunctionCallStatus()).model_copy(
            update={"approved": False, "expired": True, "comment": reason}
        )
    else:
        status = (item.status or HumanContactStatus()).model_copy(update={"expired": True})
    return item.model_copy(update={"status": status})
