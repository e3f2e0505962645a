"""What the client tells a person who set it up wrong, or whose server is down.

- an unreachable server is logged on the ``functionlayer`` logger at once and every ~10 s, with
  the URL and the time left;
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
from functionlayer._models import FunctionCall

from packages.core.tests.protocol_server import ProtocolServer


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
    backend = HttpBackend(url, "token", retry_for=12.0, backoff_initial=0.05, backoff_max=0.5)
    fl = FunctionLayer(backend=backend)
    ran: list[int] = []

    @fl.require_approval()
    def act(x: int) -> int:
        ran.append(x)
        return x

    started = time.monotonic()
    message = act(1)
    took = time.monotonic() - started
    assert ran == []
    assert message.startswith("act was not run: could not get a human decision")
    # A server may hold it (it may have arrived before the connection broke): say where.
    assert "If the request reached an approver, it is kept under call id" in message

    lines = [(t, m) for t, m in fl_log.records if url in m]
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
    fl = FunctionLayer(backend=HttpBackend(url, "t", retry_for=1.5, backoff_initial=0.05))

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
