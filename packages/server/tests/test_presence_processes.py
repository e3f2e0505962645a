"""Issue 19: the inbox of every server process tells whether the agent still waits, when
several processes share one database. The agent's long-poll is held by process A; the inbox is
read on process B. B says "waiting" while A holds it (A's heartbeat), "stopped waiting" within
a second or two of the agent's connection closing, and "may have stopped waiting" within ten
seconds of A dying without a word."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from functionlayer_server import ApprovalService, ManualClock, Settings, create_app
from functionlayer_server._requests._presence import (
    AGENT_HEARTBEAT_SECONDS,
    AGENT_HELD_FRESH_SECONDS,
)

from tests._support.inbox import log_in
from tests._support.inprocess import STORES, database_url
from tests._support.servers import ServerFactory, ServerProcess, free_port

T = TypeVar("T")

PASSWORD = "presence-password-1"
WAITING = "waiting for your answer now"
LEFT = "(its connection closed)"
GONE = "may have stopped waiting"


@pytest.fixture
def two_processes(
    postgres_url: str, server_factory: ServerFactory
) -> Iterator[tuple[ServerProcess, ServerProcess, httpx.Client]]:
    """Processes A and B on one PostgreSQL database (SQLite is served by one process: the
    in-process tests cover it), and alice logged in to B's inbox."""
    a = server_factory(postgres_url)
    b = server_factory(postgres_url, token=a.token)
    a.create_user("alice", PASSWORD)
    with httpx.Client(base_url=b.base_url, timeout=10) as browser:
        log_in(browser, "alice", PASSWORD)
        yield a, b, browser


def _create(base_url: str, token: str) -> str:
    """A new request of the agent with ``token``: its call id."""
    call_id = f"presence-{uuid.uuid4().hex[:10]}"
    created = httpx.post(
        f"{base_url}/functionlayer/v1/function_calls",
        headers={"Authorization": f"Bearer {token}"},
        json={"run_id": "r", "call_id": call_id, "spec": {"fn": "deploy", "kwargs": {}}},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    return call_id


def _long_poll(port: int, call_id: str, token: str) -> socket.socket:
    """The agent's long-poll, on a connection the test closes when the agent goes away."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            f"GET /functionlayer/v1/function_calls/{call_id}?wait=60 HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    return sock


def _presence(browser: httpx.Client, call_id: str) -> str:
    page = browser.get(f"/inbox/calls/{call_id}")
    assert page.status_code == 200, page.text
    for words in (WAITING, LEFT, GONE, "has not checked for an answer yet"):
        if words in page.text:
            return words
    raise AssertionError(f"no presence on the page:\n{page.text}")


def _until(browser: httpx.Client, call_id: str, words: str, within: float) -> list[str]:
    """B's inbox polled until it says ``words``: what it said on the way (ends with
    ``words``), failing after ``within`` seconds."""
    said: list[str] = []
    deadline = time.monotonic() + within
    while True:
        said.append(_presence(browser, call_id))
        if said[-1] == words:
            return said
        assert time.monotonic() < deadline, f"not {words!r} within {within}s: said {said}"
        time.sleep(0.2)


def _drops_and_comes_back(a: ServerProcess | _Node, token: str, browser: httpx.Client) -> None:
    """The agent long-polls on A, its connection closes, it long-polls again: B's inbox
    follows."""
    call_id = _create(a.base_url, token)
    assert _presence(browser, call_id) == "has not checked for an answer yet"
    held = _long_poll(a.port, call_id, token)
    _until(browser, call_id, WAITING, within=5)
    held.close()  # the agent's process ends: its connection closes
    _until(browser, call_id, LEFT, within=3)
    # It comes back: waiting again, everywhere.
    again = _long_poll(a.port, call_id, token)
    try:
        _until(browser, call_id, WAITING, within=5)
    finally:
        again.close()


@pytest.mark.postgres
def test_a_dropped_long_poll_reads_left_in_another_process(
    two_processes: tuple[ServerProcess, ServerProcess, httpx.Client],
) -> None:
    a, _b, browser = two_processes
    _drops_and_comes_back(a, a.token, browser)


@pytest.mark.postgres
def test_a_killed_holder_reads_gone_in_another_process(
    two_processes: tuple[ServerProcess, ServerProcess, httpx.Client],
) -> None:
    a, _b, browser = two_processes
    call_id = _create(a.base_url, a.token)
    held = _long_poll(a.port, call_id, a.token)
    try:
        _until(browser, call_id, WAITING, within=5)
        time.sleep(AGENT_HEARTBEAT_SECONDS + 1)  # A noted the held long-poll at least once
        assert _presence(browser, call_id) == WAITING
        a.kill()  # A dies without a word (kill -9): nobody says the agent left
        said = _until(browser, call_id, GONE, within=10)
    finally:
        held.close()
    assert LEFT not in said


# -- in process: two apps on one database (SQLite too), one clock the test moves -------------


class _Node:
    """The server app served by uvicorn on its own event loop in a thread (a server process,
    as seen from the database). ``freeze`` blocks its loop: none of its code runs any more, as
    when a process is killed; ``close`` thaws it and shuts it down."""

    def __init__(self, url: str, clock: ManualClock) -> None:
        self.app = create_app(Settings(database_url=url), clock=clock)
        self.service: ApprovalService = self.app.state.service
        self.port = free_port()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self._thaw = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.serving = asyncio.run_coroutine_threadsafe(self.server.serve(), self.loop)
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert not self.serving.done(), self.serving.result()
            assert time.monotonic() < deadline, "the in-process server did not start"
            time.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=20)

    def freeze(self) -> None:
        frozen = threading.Event()

        def block() -> None:
            frozen.set()
            self._thaw.wait()

        self.loop.call_soon_threadsafe(block)
        assert frozen.wait(timeout=10), "the loop did not freeze"

    def close(self) -> None:
        self._thaw.set()
        self.server.should_exit = True
        self.serving.result(timeout=20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(params=STORES)
def two_nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[_Node, _Node, ManualClock, httpx.Client]]:
    """Apps A and B on one database and one clock, and alice logged in to B's inbox."""
    clock = ManualClock(1_800_000_000.0)
    with database_url(request, tmp_path) as url:
        a = _Node(url, clock)
        try:
            b = _Node(url, clock)
            try:
                a.run(a.service.accounts.create_person("alice", password=PASSWORD))
                with httpx.Client(base_url=b.base_url, timeout=10) as browser:
                    log_in(browser, "alice", PASSWORD)
                    yield a, b, clock, browser
            finally:
                b.close()
        finally:
            a.close()


def test_another_app_says_left_when_the_agents_connection_closes(
    two_nodes: tuple[_Node, _Node, ManualClock, httpx.Client],
) -> None:
    a, _b, _clock, browser = two_nodes
    _drops_and_comes_back(a, a.run(a.service.create_token("agent")), browser)


def test_another_app_says_waiting_while_held_and_gone_once_the_holder_is_silent(
    two_nodes: tuple[_Node, _Node, ManualClock, httpx.Client],
) -> None:
    a, _b, clock, browser = two_nodes
    token = a.run(a.service.create_token("agent"))
    call_id = _create(a.base_url, token)
    held = _long_poll(a.port, call_id, token)
    try:
        _until(browser, call_id, WAITING, within=5)
        # Long after its poll (past the window a poll alone counts for), A's heartbeat still
        # says it holds the long-poll.
        clock.advance(600)
        _until(browser, call_id, WAITING, within=AGENT_HEARTBEAT_SECONDS + 2)
        a.freeze()  # A stops without a word
        clock.advance(AGENT_HELD_FRESH_SECONDS + 1)
        assert _presence(browser, call_id) == GONE
    finally:
        held.close()
