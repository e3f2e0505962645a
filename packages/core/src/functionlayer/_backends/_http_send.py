"""How ``HttpBackend`` sends one request: the path (lean client or httpx), timeouts, retries.

Two paths, the same behaviour (timeouts, retries, TLS verification, error types and messages):

- the lean keep-alive HTTP/1.1 client (``_wire``) by default: a fraction of httpx's CPU per
  request, which is most of a guarded call's cost on the agent's side;
- httpx whenever the user plugs in a transport (``transport=`` for sync calls,
  ``async_transport=`` for async ones: mocks, proxies, HTTP/2, custom TLS, ...) or a proxy
  environment variable (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``) applies to the server's
  URL, as httpx honours them.

Connection errors, timeouts, 429 and 5xx are retried with capped exponential backoff and jitter
for ``retry_for`` seconds; a server never reached from this process gets ``connect_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import urllib.request
import weakref
from typing import Any, Generic, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from functionlayer import _interrupt
from functionlayer._backends._http_answers import Answer, Retry, creates, interpret
from functionlayer._backends._httpx_clients import AsyncClients
from functionlayer._backends._wire import AsyncWire, SyncWire, WireTarget
from functionlayer._errors import BackendUnavailableError, FunctionLayerError

__all__ = ["ABANDON_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT", "HttpSending", "connect_timeout_of"]

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("functionlayer")

#: Default of ``connect_timeout`` when neither the argument nor FUNCTIONLAYER_CONNECT_TIMEOUT says.
DEFAULT_CONNECT_TIMEOUT = 5.0

#: Seconds for telling the server a request was abandoned (one try: the program is stopping).
ABANDON_TIMEOUT = 0.8

#: The base URLs that answered at least once in this process (any HTTP answer counts).
_reached: set[str] = set()


def connect_timeout_of(value: float | None) -> float:
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


def _proxied(base_url: str) -> bool:
    """Whether httpx (which honours the proxy environment variables) would use a proxy."""
    proxies = urllib.request.getproxies()
    parts = urlsplit(base_url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


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


class _Retrying:
    def __init__(self, backoff: _Backoff, outage: _OutageLog) -> None:
        self.backoff, self.outage = backoff, outage

    def next_delay(self, outcome: Retry) -> float:
        """Seconds to sleep before the next try; raises the error when it is time to give up."""
        delay = self.backoff.next_delay(outcome.retry_after)
        if delay is None:
            raise outcome.error
        self.outage.failed(outcome.error, self.backoff.give_up_at)
        return delay


class _Tries(Generic[M]):
    """One request's tries: its body serialised once, then what each answer means."""

    def __init__(
        self,
        sending: HttpSending,
        model: type[M],
        method: str,
        path: str,
        body: BaseModel | None,
        deadline: float | None,
    ) -> None:
        self.sending, self.model, self.path, self.deadline = sending, model, path, deadline
        # Null fields included, as the predecessor's clients and servers expect.
        self.content = None if body is None else body.model_dump_json().encode()
        self.creating = creates(method, path)
        self.started = time.monotonic()
        self.retrying: _Retrying | None = None  # made at the first failure
        self.error: FunctionLayerError  # set by ``judge`` before it asks for another try

    def judge(self, answer: Answer | httpx.TransportError) -> M | float:
        """The parsed model, or seconds to wait before trying again (raises a permanent error,
        or the last one when it is time to give up)."""
        sending = self.sending
        if isinstance(answer, httpx.TransportError):
            self.retrying = self.retrying or sending._retrying(self.started, self.deadline)
            outcome: M | Retry = sending._unreachable(answer, self.retrying.backoff, self.started)
        else:
            _reached.add(sending.base_url)
            outcome = interpret(self.model, answer, sending.base_url, self.creating, self.path)
        if not isinstance(outcome, Retry):
            return outcome
        self.error = outcome.error
        self.retrying = self.retrying or sending._retrying(self.started, self.deadline)
        return self.retrying.next_delay(outcome)


class Sent(TypedDict, total=False):
    """What a request may carry besides its method and path."""

    body: BaseModel | None  # sent as JSON
    wait: float | None  # a long-poll: ``?wait=`` seconds
    deadline: float | None  # the caller's own deadline (``time.monotonic()``), for retries


class HttpSending:
    """The sending half of ``HttpBackend`` (which sets the attributes below)."""

    base_url: str
    request_timeout: float
    retry_for: float
    connect_timeout: float
    backoff_initial: float
    backoff_max: float

    def _setup_sending(
        self,
        headers: dict[str, str],
        transport: httpx.BaseTransport | None,
        async_transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self._headers = headers
        proxied = _proxied(self.base_url)
        target = WireTarget(self.base_url, headers)
        self._wire = SyncWire(target) if transport is None and not proxied else None
        self._async_target = target if async_transport is None and not proxied else None
        # Long-polls hold a connection each: no pool cap, or thousands of waits would queue.
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        # Per event loop (connections cannot cross loops): lean pools, or sharded httpx clients.
        self._awires: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncWire] = (
            weakref.WeakKeyDictionary()
        )
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClients] = (
            weakref.WeakKeyDictionary()
        )
        # The loop of the last async request and its pool (a weak reference: loops end).
        self._last_awire: tuple[weakref.ref[asyncio.AbstractEventLoop], AsyncWire] | None = None

    @property
    def uses_httpx(self) -> tuple[bool, bool]:
        """Whether sync and async requests go through httpx (else the lean client)."""
        return self._wire is None, self._async_target is None

    def _request_args(
        self, method: str, path: str, body: bytes | None, wait: float | None
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
            args["content"] = body
            args["headers"] = {**self._headers, "Content-Type": "application/json"}
        return args

    def _unreachable(self, exc: httpx.TransportError, backoff: _Backoff, started: float) -> Retry:
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
        return Retry(BackendUnavailableError(message, never_reached=never), retry_after=None)

    def _retrying(self, started: float, deadline: float | None) -> _Retrying:
        """The backoff and the outage log of one request, from its first failure on."""
        give_up = started + self.retry_for
        if deadline is not None:
            give_up = min(give_up, max(deadline, started + 1.0))
        backoff = _Backoff(self.backoff_initial, self.backoff_max, give_up)
        return _Retrying(backoff, _OutageLog(self.base_url))

    def _send_once(self, method: str, path: str, body: bytes | None, wait: float | None) -> Answer:
        wire = self._wire
        if wire is not None:
            data = wire.target.request(method, path + (f"?wait={wait:g}" if wait else ""), body)
            return wire.request(
                data,
                min(self.request_timeout, self.connect_timeout),
                self.request_timeout + (wait or 0.0),
            )
        return self._sync_client().request(**self._request_args(method, path, body, wait))

    async def _asend_once(
        self, method: str, path: str, body: bytes | None, wait: float | None
    ) -> Answer:
        if self._async_target is not None:
            wire = self._async_wire()
            data = wire.target.request(method, path + (f"?wait={wait:g}" if wait else ""), body)
            return await wire.request(
                data,
                min(self.request_timeout, self.connect_timeout),
                self.request_timeout + (wait or 0.0),
            )
        args = self._request_args(method, path, body, wait)
        return await self._async_clients().request(args)

    def _send(self, model: type[M], method: str, path: str, **sent: Unpack[Sent]) -> M:
        """The answer to one request, as ``model``; tried again while the server cannot be
        reached or is overloaded (see ``_Tries``)."""
        tries = _Tries(self, model, method, path, sent.get("body"), sent.get("deadline"))
        wait = sent.get("wait")
        while True:
            answer: Answer | httpx.TransportError
            try:
                answer = self._send_once(method, path, tries.content, wait)
            except httpx.TransportError as exc:
                answer = exc
            result = tries.judge(answer)
            if not isinstance(result, float):
                return result
            if _interrupt.stopping.wait(result):  # Ctrl-C: no more retries
                raise tries.error

    async def _asend(self, model: type[M], method: str, path: str, **sent: Unpack[Sent]) -> M:
        """The async twin of ``_send``."""
        attempts = _Tries(self, model, method, path, sent.get("body"), sent.get("deadline"))
        wait = sent.get("wait")
        while True:
            try:
                result = attempts.judge(
                    await self._asend_once(method, path, attempts.content, wait)
                )
            except httpx.TransportError as exc:
                result = attempts.judge(exc)
            if not isinstance(result, float):
                return result
            await asyncio.sleep(result)
            if _interrupt.stopping.is_set():
                raise attempts.error

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
        outcome = interpret(model, response, self.base_url)
        if isinstance(outcome, Retry):
            raise outcome.error
        return outcome

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(transport=self._transport, limits=self._limits)
        return self._client

    def _async_wire(self) -> AsyncWire:
        loop = asyncio.get_running_loop()
        last = self._last_awire
        if last is not None and last[0]() is loop:  # the loop of the last request, as a rule
            return last[1]
        wire = self._awires.get(loop)
        if wire is None:
            assert self._async_target is not None
            wire = self._awires[loop] = AsyncWire(self._async_target)
        self._last_awire = (weakref.ref(loop), wire)
        return wire

    def _async_clients(self) -> AsyncClients:
        loop = asyncio.get_running_loop()
        clients = self._aclients.get(loop)
        if clients is None:
            clients = self._aclients[loop] = AsyncClients(self._async_transport)
        return clients

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        self.close()
        loop = asyncio.get_running_loop()
        wire = self._awires.pop(loop, None)
        if wire is not None:
            wire.close()
        if self._last_awire is not None and self._last_awire[1] is wire:
            self._last_awire = None
        clients = self._aclients.pop(loop, None)
        if clients is not None:
            await clients.aclose()
