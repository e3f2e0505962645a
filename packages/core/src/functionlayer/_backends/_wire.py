"""The lean HTTP/1.1 client ``HttpBackend`` uses by default (no custom transport, no proxy).

httpx costs about a millisecond of CPU per request in its pool bookkeeping, URL parsing and
header models, which would be most of a guarded call's cost. This client does what the
protocol needs and nothing more: keep-alive connections (a shared pool for threads, a pool per
event loop for async), one ``send`` per request, responses parsed from the bytes read
(``_wire_parse``), TLS through ``ssl`` with verification on (httpx's CA choice: certifi, or
``SSL_CERT_FILE``/``SSL_CERT_DIR``). Failures raise the same ``httpx.TransportError`` types as
httpx, so the backend's retries and messages are the same on both paths.

A reused keep-alive connection that the server has closed meanwhile (an idle timeout) is noticed
before the request when possible and otherwise, if the server hung up before answering anything,
the request is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import ssl
import time
from collections import deque
from urllib.parse import urlsplit

import httpx

from functionlayer._backends._wire_parse import ResponseParser, WireResponse

__all__ = ["AsyncWire", "SyncWire", "WireResponse", "WireTarget", "tls_context"]

#: Idle keep-alive connections kept per pool (long-polls may hold more while they wait).
MAX_IDLE = 64

_READ = 65536

#: Seconds an idle connection is reused without first checking that the server kept it open.
_FRESH = 1.0


def tls_context() -> ssl.SSLContext:
    """Verification on, with the CA certificates httpx would use."""
    return httpx.create_ssl_context()


class WireTarget:
    """Where requests go and the header lines every request carries."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        default_port = parts.port is None or parts.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.prefix = parts.path.rstrip("/")
        fixed = {"Host": host if default_port else f"{host}:{self.port}", **headers}
        self.head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode(
            "latin-1"
        )

    def request(self, method: str, target: str, body: bytes | None) -> bytes:
        line = f"{method} {self.prefix}{target} HTTP/1.1\r\n".encode("latin-1")
        if body is None:
            return (
                line + self.head + (b"Content-Length: 0\r\n\r\n" if method == "POST" else b"\r\n")
            )
        return (
            line
            + self.head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


class SyncWire:
    """Keep-alive connections shared by the threads of one backend."""

    def __init__(self, target: WireTarget) -> None:
        self.target = target
        self._idle: deque[tuple[socket.socket, float]] = deque()
        self._pid = os.getpid()
        self._tls: ssl.SSLContext | None = None

    def request(self, data: bytes, connect_timeout: float, read_timeout: float) -> WireResponse:
        if self._pid != os.getpid():  # a forked child must not share its parent's sockets
            self._idle.clear()
            self._pid = os.getpid()
        sock = self._reuse()
        if sock is not None:
            try:
                return self._exchange(sock, data, read_timeout, reused=True)
            except _Stale:
                pass  # closed by the server while idle, before it read anything: a new one
        sock = self._connect(connect_timeout)
        try:
            return self._exchange(sock, data, read_timeout, reused=False)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from None

    def _reuse(self) -> socket.socket | None:
        while True:
            try:
                sock, idle_since = self._idle.pop()
            except IndexError:
                return None
            # Servers close idle connections after seconds (uvicorn: 5): a fresh one is not
            # looked at (the retry below covers the rare race), an older one is.
            if time.monotonic() - idle_since < _FRESH or _alive(sock):
                return sock
            sock.close()

    def _connect(self, connect_timeout: float) -> socket.socket:
        target = self.target
        try:
            sock = socket.create_connection((target.host, target.port), timeout=connect_timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls:
                if self._tls is None:
                    self._tls = tls_context()
                sock = self._tls.wrap_socket(sock, server_hostname=target.host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:  # ssl.SSLError included: a certificate that does not verify
            sock.close()
            raise httpx.ConnectError(str(exc)) from None
        return sock

    def _exchange(
        self, sock: socket.socket, data: bytes, read_timeout: float, *, reused: bool
    ) -> WireResponse:
        parser = ResponseParser()
        try:
            # The read timeout bounds the send too (a request is small: its send never waits
            # on a live server), so a kept-alive socket is set once, not twice per request.
            if sock.gettimeout() != read_timeout:
                sock.settimeout(read_timeout)
            try:
                sock.sendall(data)
            except TimeoutError:
                raise httpx.WriteTimeout("timed out") from None
            except OSError as exc:
                if reused:
                    raise _Stale from None
                raise httpx.WriteError(str(exc)) from None
            while True:
                try:
                    chunk = sock.recv(_READ)
                except TimeoutError:
                    raise httpx.ReadTimeout("timed out") from None
                except OSError as exc:
                    if reused and not parser.started:
                        raise _Stale from None
                    raise httpx.ReadError(str(exc)) from None
                if not chunk:
                    if parser.feed_eof():
                        break
                    if reused and not parser.started:
                        raise _Stale
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                        if not parser.started
                        else "peer closed connection without sending complete message body"
                    )
                if parser.feed(chunk):
                    break
        except BaseException:
            sock.close()
            raise
        response = parser.response
        assert response is not None
        if parser.will_close or len(self._idle) >= MAX_IDLE:
            sock.close()
        else:
            self._idle.append((sock, time.monotonic()))
        return response

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


class _Stale(Exception):
    """A reused connection the server had closed: the request never reached it."""


def _alive(sock: socket.socket) -> bool:
    """An idle keep-alive connection with nothing to read: a closed one reads as ready (EOF)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


class _Connection(asyncio.Protocol):
    """One keep-alive connection of an event loop: one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[WireResponse] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        parser, waiter = self.parser, self.waiter
        if parser is None or waiter is None or waiter.done():
            self.close()  # bytes while no request is open: not a connection to reuse
            return
        try:
            done = parser.feed(data)
        except httpx.RemoteProtocolError as exc:
            self.close()
            waiter.set_exception(exc)
            return
        if done:
            assert parser.response is not None
            self.parser = None
            if parser.will_close:
                self.close()
            waiter.set_result(parser.response)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        parser, waiter = self.parser, self.waiter
        if parser is None or waiter is None or waiter.done():
            return
        if parser.feed_eof():
            assert parser.response is not None
            waiter.set_result(parser.response)
        elif not parser.started:
            waiter.set_exception(_Stale())
        elif exc is not None:
            waiter.set_exception(httpx.ReadError(str(exc)))
        else:
            waiter.set_exception(
                httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _ReadDeadlines:
    """The read deadlines of one event loop's open requests, watched by one timer set for the
    nearest. A timer per request would cost a heap entry and a cancellation each (the heap
    compares timers in Python); here a request costs a dict entry, and the timer is moved only
    when a request's deadline comes before it (a request that ends leaves it be: when it fires,
    the deadlines are looked at and it is set for the next one)."""

    def __init__(self) -> None:
        self._open: dict[asyncio.Future[WireResponse], float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(
        self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[WireResponse], after: float
    ) -> None:
        deadline = loop.time() + after
        self._open[waiter] = deadline
        if self._timer is None or self._timer.when() > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._fire, loop)

    def forget(self, waiter: asyncio.Future[WireResponse]) -> None:
        self._open.pop(waiter, None)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        # The loop runs a timer up to its clock resolution early: what is due within it is due.
        now = loop.time() + _TIMER_SLACK
        nearest: float | None = None
        for waiter, deadline in list(self._open.items()):
            if deadline <= now:
                del self._open[waiter]
                if not waiter.done():
                    waiter.set_exception(httpx.ReadTimeout("timed out"))
            elif nearest is None or deadline < nearest:
                nearest = deadline
        if nearest is not None:
            self._timer = loop.call_at(nearest, self._fire, loop)


#: Seconds before its deadline a request may be timed out (the event loop's timer precision).
_TIMER_SLACK = 0.001


class AsyncWire:
    """Keep-alive connections of one event loop."""

    def __init__(self, target: WireTarget) -> None:
        self.target = target
        self._idle: list[_Connection] = []
        self._tls: ssl.SSLContext | None = None
        self._deadlines = _ReadDeadlines()

    async def request(
        self, data: bytes, connect_timeout: float, read_timeout: float
    ) -> WireResponse:
        connection = self._reuse()
        if connection is not None:
            try:
                return await self._exchange(connection, data, read_timeout)
            except _Stale:
                pass  # closed by the server while idle, before it read anything: a new one
        connection = await self._connect(connect_timeout)
        try:
            return await self._exchange(connection, data, read_timeout)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from None

    def _reuse(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, connect_timeout: float) -> _Connection:
        target = self.target
        tls: ssl.SSLContext | None = None
        if target.tls:
            if self._tls is None:
                self._tls = tls_context()
            tls = self._tls
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:  # ssl.SSLError included
            raise httpx.ConnectError(str(exc)) from None
        return connection

    async def _exchange(
        self, connection: _Connection, data: bytes, read_timeout: float
    ) -> WireResponse:
        assert connection.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[WireResponse] = loop.create_future()
        connection.parser, connection.waiter = ResponseParser(), waiter
        self._deadlines.watch(loop, waiter, read_timeout)
        try:
            connection.transport.write(data)
            response = await waiter
        except BaseException:  # timed out, cancelled, or the connection failed: never reused
            connection.close()
            raise
        finally:
            self._deadlines.forget(waiter)
            connection.waiter = None
        if not connection.closed and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        elif not connection.closed:
            connection.close()
        return response

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
