"""HttpBackend's two HTTP paths (the lean keep-alive client, the default, and httpx, used with a
plugged-in transport or a proxy) against real local servers: keep-alive reuse, a connection the
server closed while idle, chunked and large answers, HTTPS with a certificate that verifies or
not, and when which path is taken."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer import FunctionCall, FunctionCallSpec, HttpBackend
from functionlayer._errors import BackendUnavailableError, MalformedResponseError

CALL = FunctionCall(run_id="r", call_id="c1", spec=FunctionCallSpec(fn="act", kwargs={"n": 1}))


def make(base_url: str, path: str, **options: Any) -> HttpBackend:
    options = {"retry_for": 2.0, "backoff_initial": 0.02, "backoff_max": 0.1, **options}
    if path == "httpx":
        options["transport"] = httpx.HTTPTransport()
        options["async_transport"] = httpx.AsyncHTTPTransport()
    return HttpBackend(base_url, "t", **options)


class RawServer:
    """A socket server answering each request with ``answer(body_of_call)``'s bytes; counts the
    connections it accepted. ``close_idle_after``: it closes a kept-alive connection that has
    been idle that long (as servers do with their keep-alive timeout)."""

    def __init__(
        self,
        answer: Callable[[bytes], bytes],
        *,
        close_idle_after: float | None = None,
        tls: ssl.SSLContext | None = None,
        hang_up: bool = False,
    ) -> None:
        self.answer, self.hang_up, self.tls = answer, hang_up, tls
        self.close_idle_after = close_idle_after
        self.connections = self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}/functionlayer/v1"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while True:
                conn.settimeout(self.close_idle_after)
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                self.requests += 1
                conn.sendall(self.answer(body))
                if self.hang_up:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(answer: Callable[[bytes], bytes], **options: Any) -> RawServer:
        servers.append(RawServer(answer, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def json_answer(payload: bytes, *, chunked: bool = False, status: str = "200 OK") -> bytes:
    if chunked:  # in uneven chunks, with a chunk extension and a trailer
        parts = [payload[i : i + 7000] for i in range(0, len(payload), 7000)]
        body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
        return (
            (
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
            + body
            + b"0\r\nX-Trailer: yes\r\n\r\n"
        )
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def call_json(**kwargs: Any) -> bytes:
    return (
        CALL.model_copy(update={"spec": FunctionCallSpec(fn="act", kwargs=kwargs)})
        .model_dump_json()
        .encode()
    )


PATHS = ["lean", "httpx"]


@pytest.mark.parametrize("path", PATHS)
def test_requests_reuse_one_kept_alive_connection(
    serve: Callable[..., RawServer], path: str
) -> None:
    server = serve(lambda _: json_answer(call_json(n=1)))
    backend = make(server.base_url, path)
    for _ in range(5):
        assert backend.get_function_call("c1").spec.kwargs == {"n": 1}
    assert (server.requests, server.connections) == (5, 1)
    backend.close()


@pytest.mark.parametrize("path", PATHS)
def test_a_connection_the_server_closed_while_idle_is_replaced(
    serve: Callable[..., RawServer], path: str
) -> None:
    server = serve(lambda _: json_answer(call_json(n=1)), close_idle_after=0.1)
    backend = make(server.base_url, path, retry_for=0.01)  # no retry needed: none may fail
    assert backend.get_function_call("c1").spec.kwargs == {"n": 1}
    threading.Event().wait(1.3)  # the server has closed it (also past the lean client's _FRESH)
    assert backend.get_function_call("c1").spec.kwargs == {"n": 1}
    assert server.connections == 2
    backend.close()


def test_the_lean_client_resends_once_when_a_fresh_idle_connection_was_closed(
    serve: Callable[..., RawServer],
) -> None:
    """Closed by the server within the second the lean client trusts an idle connection: the
    request, which the server never read, goes out once more on a new connection."""
    server = serve(lambda _: json_answer(call_json(n=1)), close_idle_after=0.05)
    backend = make(server.base_url, "lean", retry_for=0.01)
    assert backend.get_function_call("c1").spec.kwargs == {"n": 1}
    threading.Event().wait(0.3)
    assert backend.get_function_call("c1").spec.kwargs == {"n": 1}
    assert (server.requests, server.connections) == (2, 2)
    backend.close()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("chunked", [False, True])
def test_large_and_chunked_answers_are_read_whole(
    serve: Callable[..., RawServer], path: str, chunked: bool
) -> None:
    big = "x" * 1_500_000
    server = serve(lambda _: json_answer(call_json(text=big), chunked=chunked))
    backend = make(server.base_url, path)
    for _ in range(2):  # and the connection stays usable after it
        assert backend.get_function_call("c1").spec.kwargs == {"text": big}
    assert server.connections == 1
    backend.close()


@pytest.mark.parametrize("path", PATHS)
def test_async_requests_on_both_paths(serve: Callable[..., RawServer], path: str) -> None:
    server = serve(lambda _: json_answer(call_json(n=2), chunked=True))
    backend = make(server.base_url, path)

    async def main() -> list[FunctionCall]:
        try:
            return await asyncio.gather(*(backend.aget_function_call("c1") for _ in range(20)))
        finally:
            await backend.aclose()

    assert all(call.spec.kwargs == {"n": 2} for call in asyncio.run(main()))


@pytest.mark.parametrize("path", PATHS)
def test_a_response_cut_short_fails_closed(serve: Callable[..., RawServer], path: str) -> None:
    """A body shorter than its Content-Length (the server hung up): retried, then an error,
    never a half-read decision."""
    payload = call_json(n=1)
    server = serve(lambda _: json_answer(payload)[:-10], hang_up=True)
    backend = make(server.base_url, path, retry_for=0.3)
    with pytest.raises(BackendUnavailableError, match="cannot reach the FunctionLayer server"):
        backend.get_function_call("c1")


@pytest.mark.parametrize("path", PATHS)
def test_garbage_instead_of_http_fails_closed(serve: Callable[..., RawServer], path: str) -> None:
    server = serve(lambda _: b"SSH-2.0-OpenSSH_9.6\r\n\r\n", hang_up=True)
    backend = make(server.base_url, path, retry_for=0.3)
    with pytest.raises(BackendUnavailableError, match="RemoteProtocolError"):
        backend.get_function_call("c1")


@pytest.mark.parametrize("path", PATHS)
def test_a_body_that_is_not_the_model_fails_closed(
    serve: Callable[..., RawServer], path: str
) -> None:
    server = serve(lambda _: json_answer(json.dumps({"call_id": 7}).encode()))
    with pytest.raises(MalformedResponseError):
        make(server.base_url, path).get_function_call("c1")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


@pytest.mark.parametrize("path", PATHS)
def test_https_verifies_the_server_certificate(
    serve: Callable[..., RawServer],
    certificate: tuple[Path, Path],
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = serve(lambda _: json_answer(call_json(n=3)), tls=tls)
    # Not trusted: fails closed, nothing read from the server.
    with pytest.raises(BackendUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        make(server.base_url, path, retry_for=0.3).get_function_call("c1")
    assert server.requests == 0
    # Trusted the way httpx trusts it (SSL_CERT_FILE): verified, then read.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    backend = make(server.base_url, path)
    assert backend.get_function_call("c1").spec.kwargs == {"n": 3}

    async def again() -> FunctionCall:
        try:
            return await backend.aget_function_call("c1")
        finally:
            await backend.aclose()

    assert asyncio.run(again()).spec.kwargs == {"n": 3}


def test_which_path_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    base = "http://127.0.0.1:9/functionlayer/v1"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert HttpBackend(base, "t").uses_httpx == (False, False)
    assert HttpBackend(base, "t", transport=httpx.HTTPTransport()).uses_httpx == (True, False)
    assert HttpBackend(base, "t", async_transport=httpx.AsyncHTTPTransport()).uses_httpx == (
        False,
        True,
    )
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert HttpBackend(base, "t").uses_httpx == (True, True)  # httpx honours the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert HttpBackend(base, "t").uses_httpx == (False, False)


def test_async_read_timeouts_fire_for_each_request_on_the_lean_client(
    serve: Callable[..., RawServer],
) -> None:
    """One timer watches an event loop's read deadlines: a later request with a nearer
    deadline moves it earlier, a request answered in time leaves it set, and every request
    still times out at its own deadline, not before and not at another's."""
    import time

    from functionlayer._backends._wire import AsyncWire, WireTarget

    def answer(body: bytes) -> bytes:
        if body == b"hang":
            threading.Event().wait(2.5)
        return json_answer(b"{}")

    server = serve(answer)
    wire = AsyncWire(WireTarget(server.base_url, {}))

    async def timed(body: bytes, read_timeout: float) -> tuple[str, float]:
        data = wire.target.request("POST", "/x", body)
        began = time.monotonic()
        try:
            response = await wire.request(data, 2.0, read_timeout)
        except httpx.ReadTimeout:
            return "timed out", time.monotonic() - began
        return str(response.status_code), time.monotonic() - began

    async def main() -> list[tuple[str, float]]:
        far = asyncio.ensure_future(timed(b"hang", 1.2))
        await asyncio.sleep(0.05)
        near = asyncio.ensure_future(timed(b"hang", 0.3))
        answered = asyncio.ensure_future(timed(b"fast", 0.2))
        try:
            return list(await asyncio.gather(far, near, answered))
        finally:
            wire.close()

    (far, far_after), (near, near_after), (answered, _) = asyncio.run(main())
    assert (far, near, answered) == ("timed out", "timed out", "200")
    assert 0.29 <= near_after < 0.9
    assert 1.19 <= far_after < 2.2
