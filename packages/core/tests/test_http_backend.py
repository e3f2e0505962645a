"""The HTTP backend against a real local HTTP server of the protocol, with injected faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from functionlayer import (
    ApprovalMethod,
    FunctionCallSpec,
    FunctionLayer,
    HttpBackend,
    HumanContactSpec,
    call_id_scope,
    tool_spec,
)

from packages.core.tests.protocol_server import Fault, ProtocolServer


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    with ProtocolServer() as srv:
        yield srv


#: Which HTTP path the backends of a test use: the lean client (the default) or httpx (what a
#: plugged-in transport gets). Every test here runs on both.
_path = {"now": "lean"}


@pytest.fixture(autouse=True, params=["lean", "httpx"])
def http_path(request: pytest.FixtureRequest) -> Iterator[str]:
    _path["now"] = request.param
    yield request.param
    _path["now"] = "lean"


def http_path_now() -> str:
    return _path["now"]


def backend(base_url: str, token: str, **options: Any) -> HttpBackend:
    if _path["now"] == "httpx":
        options.setdefault("transport", httpx.HTTPTransport())
        options.setdefault("async_transport", httpx.AsyncHTTPTransport())
    made = HttpBackend(base_url, token, **options)
    assert made.uses_httpx == ((True, True) if _path["now"] == "httpx" else (False, False))
    return made


def client(server: ProtocolServer, **backend_options: float) -> FunctionLayer:
    options = {"retry_for": 5.0, "backoff_initial": 0.02, "backoff_max": 0.2, "long_poll": 10.0}
    options.update(backend_options)
    return FunctionLayer(
        backend=backend(server.base_url, server.token, **options), run_id="http-test"
    )


def answer_when_asked(
    server: ProtocolServer, after: float = 0.2, **decision: object
) -> threading.Thread:
    """Play the human: wait for the request to arrive, then decide it."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while not server.store.function_calls and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(after)
        server.store.respond(server.store.function_calls[0].call_id, **decision)  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def approved_call_runs(fl: FunctionLayer, server: ProtocolServer, after: float = 0.2) -> None:
    """A guarded call through ``fl``, approved ``after`` seconds after it reaches ``server``,
    runs and returns its result."""

    @fl.require_approval()
    def act() -> str:
        return "done"

    answer_when_asked(server, after=after, approved=True)
    assert act() == "done"


def guarded_act(fl: FunctionLayer, **approval: Any) -> tuple[Callable[[], Any], list[int]]:
    """``act()`` guarded by ``fl.require_approval(**approval)``; ``ran`` records each run."""
    ran: list[int] = []

    @fl.require_approval(**approval)
    def act() -> int:
        ran.append(1)
        return 1

    return act, ran


def test_approval_arrives_through_one_long_poll_not_a_polling_loop(server: ProtocolServer) -> None:
    fl = client(server)
    ran: list[int] = []

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        ran.append(x)
        return x * y

    answer_when_asked(server, after=0.5, approved=True)
    assert multiply(2, 5) == 10
    assert ran == [2]
    gets = server.requests("GET", "/function_calls/")
    assert len(gets) == 1, gets  # held open until the answer, not polled
    assert "wait=" in gets[0][1]


def test_rejection_feedback_comes_back_over_http(server: ProtocolServer) -> None:
    fl = client(server)

    @fl.require_approval()
    def drop_table(name: str) -> str:
        raise AssertionError("must not run")

    answer_when_asked(server, approved=False, comment="not in production")
    assert drop_table("users") == "User denied drop_table with feedback: not in production"


def test_edits_and_respond_instead_over_http(server: ProtocolServer) -> None:
    fl = client(server)
    ran: list[tuple[int, int]] = []

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        ran.append((x, y))
        return x * y

    answer_when_asked(server, approved=True, edited_kwargs={"x": 4, "y": 5})
    assert str(multiply(2, 5)).endswith("returned: 20")
    assert ran == [(4, 5)]


def test_server_that_ignores_wait_is_polled_with_growing_backoff() -> None:
    with ProtocolServer(honour_wait=False) as server:
        approved_call_runs(client(server, backoff_initial=0.02, backoff_max=0.4), server, after=1.5)
        times = [t for _, _, t in server.requests("GET", "/function_calls/")]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 3 <= len(times) <= 20, len(times)  # neither one request nor a hot loop
        assert max(gaps[-3:]) > 3 * min(gaps[:3])  # the pauses grew


def test_connection_refused_fails_closed_after_retrying() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    fl = FunctionLayer(
        backend=backend(
            f"http://127.0.0.1:{port}/functionlayer/v1", "t", retry_for=0.5, backoff_initial=0.05
        )
    )
    act, ran = guarded_act(fl)

    started = time.monotonic()
    message = act()
    assert message.startswith("act was not run: could not get a human decision")
    assert "cannot reach the FunctionLayer server" in message
    assert ran == []
    assert time.monotonic() - started < 5


def test_server_errors_are_retried_and_creation_stays_idempotent(server: ProtocolServer) -> None:
    server.inject(
        "POST",
        Fault(status=500),
        Fault(status=503),
        Fault(status=429, headers={"Retry-After": "0.1"}),
    )
    # The next one is stored by the server but its answer is lost: the retry must not duplicate it.
    server.inject("POST", Fault(drop_connection=True, after_processing=True))
    approved_call_runs(client(server), server)
    assert len(server.requests("POST", "/function_calls")) == 5
    assert len(server.store.function_calls) == 1


def test_slow_answers_and_dropped_long_polls_are_retried(server: ProtocolServer) -> None:
    server.inject("GET", Fault(drop_connection=True), Fault(delay=1.5, status=200))
    approved_call_runs(client(server, request_timeout=0.5, long_poll=0.5), server, after=0.3)


def test_malformed_json_fails_closed(server: ProtocolServer) -> None:
    server.inject("GET", Fault(body=b"<html>proxy error</html>", after_processing=True))
    server.inject("POST", Fault(body=b'{"run_id": "x", "call_id": 7}', after_processing=True))
    fl = client(server, long_poll=0.3)
    act, ran = guarded_act(fl)

    first = act()  # POST answer malformed
    assert first.startswith("act was not run") and "MalformedResponseError" in first
    second = act()  # GET answer malformed
    assert "not a valid FunctionCall" in second
    assert ran == []


def test_a_decision_that_does_not_parse_is_never_an_approval(server: ProtocolServer) -> None:
    fl = client(server)
    act, ran = guarded_act(fl)

    tampered = {
        "run_id": "http-test",
        "call_id": "tc-1",
        "spec": {"fn": "act", "kwargs": {}},
        "status": {"requested_at": "2026-01-01T00:00:00Z", "approved": "maybe"},
    }
    server.inject("GET", Fault(body=json.dumps(tampered).encode(), after_processing=True))
    answer_when_asked(server, approved=True)
    with call_id_scope("tc-1"):
        assert "MalformedResponseError" in act()
    assert ran == []


def test_wrong_token_gets_a_clear_message(server: ProtocolServer) -> None:
    fl = FunctionLayer(backend=backend(server.base_url, "wrong", retry_for=1))

    @fl.require_approval()
    def act() -> None: ...

    message = act()
    assert "401" in message and "FUNCTIONLAYER_API_TOKEN" in message


def test_timeout_expires_the_request_on_the_server(server: ProtocolServer) -> None:
    fl = client(server)
    act, ran = guarded_act(fl, timeout=0.3)

    assert act().startswith("act was not run: timed out, no one answered within 0.3 seconds")
    stored = server.store.function_calls[0]
    assert stored.status is not None and stored.status.expired and stored.status.approved is False
    assert len(server.requests("POST", "/respond")) == 1
    assert ran == []


def test_answer_racing_the_deadline_wins_if_it_was_first(server: ProtocolServer) -> None:
    # The human answers while the client is expiring: the server keeps whichever came first.
    server.inject("RESPOND", Fault(status=409, body=b'{"detail": "already decided"}'))
    fl = client(server)

    @fl.require_approval(timeout=0.2)
    def act() -> str:
        return "ran"

    def approve_late() -> None:
        while not server.store.function_calls:
            time.sleep(0.005)
        time.sleep(0.25)
        server.store.respond(server.store.function_calls[0].call_id, approved=True)

    threading.Thread(target=approve_late, daemon=True).start()
    result = act()
    stored = server.store.function_calls[0]
    assert stored.status is not None
    # Either the approval landed first (and ran) or the call expired; never both, never neither.
    assert (result == "ran") == (stored.status.approved is True)


def test_resume_after_restart_by_call_id(server: ProtocolServer) -> None:
    """An agent that crashed while waiting asks again with the same call id and gets the decision."""
    restarted = client(server)
    ran: list[int] = []

    @restarted.require_approval()
    def act() -> str:
        ran.append(1)
        return "done"

    # The crashed agent had sent the same request: same function, arguments and schema.
    first = client(server)
    first.create_function_call(
        FunctionCallSpec(fn="act", kwargs={}, parameters=tool_spec(act).parameters),
        call_id="tool-7",
    )
    server.store.respond("tool-7", approved=True)

    with call_id_scope("tool-7"):
        assert act() == "done"
    assert len(server.store.function_calls) == 1 and ran == [1]


def test_human_contact_over_http(server: ProtocolServer) -> None:
    fl = client(server)

    def answer() -> None:
        while not server.store.human_contacts:
            time.sleep(0.01)
        server.store.answer(server.store.human_contacts[0].call_id, "blue")

    threading.Thread(target=answer, daemon=True).start()
    assert fl.human_as_tool()("Which colour?") == "blue"
    contact = fl.fetch_human_response(HumanContactSpec(msg="q"), timeout=0.2)
    assert contact.status is not None and contact.status.expired


def test_environment_configures_the_cloud_backend(
    server: ProtocolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNCTIONLAYER_API_BASE", server.base_url)
    monkeypatch.setenv("FUNCTIONLAYER_API_TOKEN", server.token)
    fl = FunctionLayer(approval_method=ApprovalMethod.CLOUD)
    assert isinstance(fl.backend, HttpBackend)
    assert isinstance(FunctionLayer().backend, HttpBackend)  # a configured server is the default
    answer_when_asked(server, approved=True)
    assert fl.fetch_approval(FunctionCallSpec(fn="f", kwargs={"a": 1})).as_completed().approved


def test_missing_server_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTIONLAYER_API_BASE", raising=False)
    with pytest.raises(ValueError, match="FUNCTIONLAYER_API_BASE"):
        FunctionLayer(approval_method="cloud")
    with pytest.raises(ValueError, match="http"):
        HttpBackend("localhost:8080")


@pytest.mark.anyio
async def test_many_async_waits_share_one_event_loop_without_threads(
    server: ProtocolServer,
) -> None:
    fl = client(server)

    @fl.require_approval()
    async def act(i: int) -> int:
        return i

    threads_before = threading.active_count()
    peak = threads_before

    async def approve_all() -> None:
        nonlocal peak
        deadline = time.monotonic() + 60
        while len(server.store.function_calls) < 100:
            peak = max(peak, threading.active_count())
            assert time.monotonic() < deadline, (
                f"only {len(server.store.function_calls)} of 100 calls arrived in 60 s"
            )
            await asyncio.sleep(0.02)
        peak = max(peak, threading.active_count())
        for call in server.store.function_calls:
            server.store.respond(call.call_id, approved=True)

    results = await asyncio.gather(*(act(i) for i in range(100)), approve_all())
    assert results[:100] == list(range(100))
    # The client adds no thread per wait (the server's handler threads are its own business).
    server_threads = len(server.requests("GET")) + len(server.requests("POST"))
    assert peak - threads_before <= server_threads
    assert peak - threads_before < 100 + server_threads


def test_a_server_without_the_claiming_wait_is_waited_on_in_two_steps(
    server: ProtocolServer,
) -> None:
    """The protocol server here predates ``claim_when_approved`` (like the predecessor's): the
    backend notices its unknown-route 404 once, then long-polls and claims separately."""
    fl = client(server)
    ran: list[int] = []

    @fl.require_approval()
    def act(i: int) -> int:
        ran.append(i)
        return i

    def approve_each(count: int) -> None:
        deadline = time.monotonic() + 10
        for n in range(1, count + 1):
            while len(server.store.function_calls) < n and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)
            server.store.respond(server.store.function_calls[n - 1].call_id, approved=True)

    human = threading.Thread(target=approve_each, args=(2,), daemon=True)
    human.start()
    assert [act(0), act(1)] == [0, 1]
    human.join(5)
    assert ran == [0, 1]
    assert len(server.requests("POST", "/claim_when_approved")) == 1  # asked once, remembered
    claims = [e for e in server.requests("POST", "/execution") if e[1].endswith("/execution")]
    assert len(claims) == 2  # each approval claimed on its own
