"""What the client tells a person who set it up wrong, or whose server is down.

- an unreachable server is logged on the ``functionlayer`` logger at once and every ~10 s, with
  the URL and the time left;
- a server never reached in this process fails a call within ``connect_timeout``
  (``FUNCTIONLAYER_CONNECT_TIMEOUT``), with the URL; one that answered once is retried for longer;
- a 404 from a base URL without the API path says so;
- ``FUNCTIONLAYER_API_TOKEN`` without ``FUNCTIONLAYER_API_BASE`` warns that the terminal is used;
- "kept under call id" is said only when a server holds the request.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from collections.abc import Iterator

import pytest
from functionlayer import (
    FunctionLayer,
    HttpBackend,
    InMemoryBackend,
    TerminalBackend,
)
from functionlayer.models import FunctionCall

from packages.core.tests.protocol_server import Fault, ProtocolServer
from packages.core.tests.recording import recorded_act
from packages.core.tests.test_http_backend import answer_when_asked


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once closed


class _Stamped(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, str]] = []
        self.started = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((time.monotonic() - self.started, record.getMessage()))


@pytest.fixture
def fl_log() -> Iterator[_Stamped]:
    handler = _Stamped()
    logger = logging.getLogger("functionlayer")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_an_unreachable_server_is_logged_at_once_then_every_ten_seconds(fl_log: _Stamped) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/functionlayer/v1"
    backend = HttpBackend(
        url, "token", retry_for=12.0, backoff_initial=0.05, backoff_max=0.5, connect_timeout=30
    )
    act, ran = recorded_act(FunctionLayer(backend=backend))
    started = time.monotonic()
    message = act(1)
    took = time.monotonic() - started
    assert ran == []
    assert message.startswith("act was not run: could not get a human decision")
    # A server may hold it (it may have arrived before the connection broke): say where.
    assert "If the request reached an approver, it is kept under call id" in message

    lines = [(t, m) for t, m in fl_log.records if url in m and "not answering" in m]
    assert len(lines) >= 2, fl_log.records
    first, second = lines[0], lines[1]
    assert first[0] < 2.0, lines
    assert 9.0 <= second[0] - first[0] <= 11.5, lines
    assert len(lines) <= 1 + int(took // 9.0), lines  # not every retry
    left = [float(m) for m in re.findall(r"retrying for (\d+) s more", first[1] + second[1])]
    assert len(left) == 2 and 10 <= left[0] <= 12 and left[1] <= 3, lines


@pytest.mark.anyio
async def test_the_async_client_logs_the_outage_too(fl_log: _Stamped) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/functionlayer/v1"
    fl = FunctionLayer(
        backend=HttpBackend(url, "t", retry_for=1.5, backoff_initial=0.05, connect_timeout=30)
    )

    @fl.require_approval()
    async def act(x: int) -> int:
        return x

    message = await act(1)
    assert message.startswith("act was not run")
    lines = [(t, m) for t, m in fl_log.records if url in m and "retrying for" in m]
    assert lines and lines[0][0] < 2.0


def test_a_404_from_a_base_url_without_the_api_path_says_so() -> None:
    with ProtocolServer() as server:
        bare = server.base_url.removesuffix("/functionlayer/v1")
        fl = FunctionLayer(backend=HttpBackend(bare, server.token, retry_for=2.0))

        @fl.require_approval()
        def act(x: int) -> int:
            return x

        message = act(1)
        assert message.startswith("act was not run")
        assert "404" in message
        assert (
            f"does not end with the API path: FUNCTIONLAYER_API_BASE should be e.g. {bare}/functionlayer/v1"
            in message
        )

        # With the API path, a 404 (an unknown call id) carries no such hint.
        proper = HttpBackend(server.base_url, server.token, retry_for=2.0)
        with pytest.raises(Exception) as unknown:
            proper.get_function_call("nope")
        assert "404" in str(unknown.value) and "API path" not in str(unknown.value)


def test_a_token_without_a_base_warns_that_the_terminal_is_used(
    monkeypatch: pytest.MonkeyPatch, fl_log: _Stamped
) -> None:
    monkeypatch.delenv("FUNCTIONLAYER_API_BASE", raising=False)
    monkeypatch.delenv("FUNCTIONLAYER_API_TOKEN", raising=False)
    assert isinstance(FunctionLayer().backend, TerminalBackend)
    assert fl_log.records == []  # nothing set: the terminal, silently

    monkeypatch.setenv("FUNCTIONLAYER_API_TOKEN", "fl_secret")
    assert isinstance(FunctionLayer().backend, TerminalBackend)
    assert len(fl_log.records) == 1
    text = fl_log.records[0][1]
    assert "using the terminal; set FUNCTIONLAYER_API_BASE" in text
    assert "fl_secret" not in text

    FunctionLayer(approval_method="terminal")  # asked for the terminal: no warning
    assert len(fl_log.records) == 1

    monkeypatch.setenv("FUNCTIONLAYER_API_BASE", "http://127.0.0.1:1/functionlayer/v1")
    assert isinstance(FunctionLayer().backend, HttpBackend)
    assert len(fl_log.records) == 1


class _Broken(InMemoryBackend):
    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        raise RuntimeError("disk full")


def test_no_call_id_sentence_when_nothing_holds_the_request() -> None:
    for backend in (_Broken(), TerminalBackend(input=io.StringIO(""), output=io.StringIO())):
        fl = FunctionLayer(backend=backend)

        @fl.require_approval()
        def act(x: int) -> int:
            return x

        message = act(1)
        assert message.startswith("act was not run: could not get a human decision"), message
        assert "call id" not in message, message


def _guarded(fl: FunctionLayer, ran: list[int]) -> object:
    @fl.require_approval()
    def act(x: int) -> int:
        ran.append(x)
        return x

    return act


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_server_never_reached_fails_the_call_within_the_connect_timeout(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/functionlayer/v1"
    monkeypatch.setenv("FUNCTIONLAYER_API_BASE", url)
    monkeypatch.setenv("FUNCTIONLAYER_API_TOKEN", "t")
    if how == "argument":
        fl = FunctionLayer(connect_timeout=1.0)
    else:
        monkeypatch.setenv("FUNCTIONLAYER_CONNECT_TIMEOUT", "1")
        fl = FunctionLayer()
    assert isinstance(fl.backend, HttpBackend) and fl.backend.retry_for == 60.0
    ran: list[int] = []
    act = _guarded(fl, ran)
    started = time.monotonic()
    message = act(1)  # type: ignore[operator]
    took = time.monotonic() - started
    assert ran == []
    assert took < 3.0, f"took {took:.1f} s (retry_for is 60 s; the connect timeout is 1 s)"
    assert isinstance(message, str) and message.startswith("act was not run")
    assert (
        url in message and "never reached" in message and "FUNCTIONLAYER_CONNECT_TIMEOUT" in message
    )


def test_the_default_connect_timeout_is_five_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTIONLAYER_CONNECT_TIMEOUT", raising=False)
    assert HttpBackend("http://127.0.0.1:1/functionlayer/v1", "t").connect_timeout == 5.0
    monkeypatch.setenv("FUNCTIONLAYER_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FUNCTIONLAYER_CONNECT_TIMEOUT must be a number"):
        HttpBackend("http://127.0.0.1:1/functionlayer/v1", "t")
    with pytest.raises(ValueError, match="connect_timeout"):
        FunctionLayer(backend=InMemoryBackend(), connect_timeout=2)


def test_a_server_that_answered_once_is_retried_past_the_connect_timeout() -> None:
    with ProtocolServer() as server:
        backend = HttpBackend(
            server.base_url,
            server.token,
            connect_timeout=0.3,
            retry_for=20.0,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        with pytest.raises(Exception, match="404"):
            backend.get_function_call("unknown")  # any answer: the server was reached
        fl = FunctionLayer(backend=backend)
        ran: list[int] = []
        act = _guarded(fl, ran)
        # Then about 1.5 s of broken connections on the long-poll (a restart), then answers.
        server.inject("GET", *[Fault(drop_connection=True, delay=0.1) for _ in range(15)])
        started = time.monotonic()
        answer_when_asked(server, after=2.0, approved=True)
        assert act(7) == 7  # type: ignore[operator]
        assert ran == [7]
        assert time.monotonic() - started > 1.5
        assert not server.faults["GET"], "every broken connection was retried"
