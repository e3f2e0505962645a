"""One agent cannot deny service to the others: a token's pending requests and its open
long-polls are capped (``429`` with the quota and how to raise it), every other agent and the
inbox keep working, and a long-poll's place is given back however it ends. Against a real
server on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from functionlayer import BackendUnavailableError, FunctionLayer, HttpBackend, call_id_scope
from functionlayer.models import FunctionCall

from tests._support.servers import ServerProcess, fresh_postgres_database
from tests.security.conftest import PASSWORD, csrf

PENDING_QUOTA = 5
LONG_POLL_QUOTA = 3


@dataclass
class Quotas:
    server: ServerProcess
    alice_token: str

    def token(self) -> str:
        """A fresh agent token (every test starts with an empty quota)."""
        return self.server.create_token(f"agent-{uuid.uuid4().hex[:8]}")

    def client(self, token: str, **kwargs: Any) -> httpx.Client:
        return self.server.client(token, **kwargs)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def quotas(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Quotas]:
    directory = tmp_path_factory.mktemp("quotas")
    env = {
        "FUNCTIONLAYER_SERVER_MAX_PENDING_PER_TOKEN": str(PENDING_QUOTA),
        "FUNCTIONLAYER_SERVER_MAX_LONG_POLLS_PER_TOKEN": str(LONG_POLL_QUOTA),
    }

    def deploy(url: str) -> Iterator[Quotas]:
        server = ServerProcess(url, directory / "server.log", env=env)
        server.create_user("alice", PASSWORD)
        alice = server.approver_token_for("alice")
        server.start()
        try:
            yield Quotas(server, alice)
        finally:
            server.kill()

    if request.param == "sqlite":
        yield from deploy(f"sqlite:///{directory / 'fl.sqlite3'}")
    else:
        with fresh_postgres_database() as url:
            yield from deploy(url)


def call(call_id: str) -> dict[str, Any]:
    return {"run_id": "flood", "call_id": call_id, "spec": {"fn": "wire_money", "kwargs": {}}}


def new_id() -> str:
    return f"q-{uuid.uuid4().hex[:12]}"


def inbox(server: ServerProcess) -> httpx.Client:
    browser = httpx.Client(base_url=server.base_url, timeout=30)
    token = csrf(browser.get("/inbox/login").text)
    answer = browser.post(
        "/inbox/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return browser


# -- pending requests ------------------------------------------------------------------------


def test_pending_quota_refuses_one_more_and_spares_other_agents(quotas: Quotas) -> None:
    flooder, other = quotas.token(), quotas.token()
    ids = [new_id() for _ in range(PENDING_QUOTA)]
    with quotas.client(flooder) as agent:
        for n, call_id in enumerate(ids):
            if n % 2:
                made = agent.post("/function_calls", json=call(call_id))
            else:  # human contacts count too
                made = agent.post(
                    "/contact_requests",
                    json={"run_id": "flood", "call_id": call_id, "spec": {"msg": "?"}},
                )
            assert made.status_code == 200, made.text
        refused_id = new_id()
        refused = agent.post("/function_calls", json=call(refused_id))
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["code"] == "quota_exceeded"
        assert f"quota is {PENDING_QUOTA}" in body["detail"]
        assert "FUNCTIONLAYER_SERVER_MAX_PENDING_PER_TOKEN" in body["detail"]
        assert int(refused.headers["Retry-After"]) > 0
        # Nothing was stored, and a retry of a request it already has is never refused.
        assert agent.get(f"/function_calls/{refused_id}").status_code == 404
        again = agent.post("/function_calls", json=call(ids[1]))
        assert again.status_code == 200, again.text
    # Another agent is not affected, nor is the inbox.
    with quotas.client(other) as agent:
        assert agent.post("/function_calls", json=call(new_id())).status_code == 200
    with closing(inbox(quotas.server)) as browser:
        page = browser.get("/inbox")
        assert page.status_code == 200 and ids[1] in page.text
    # Once one is decided, the flooder may ask again.
    with quotas.client(quotas.alice_token) as alice:
        decided = alice.post(f"/agent/function_calls/{ids[1]}/respond", json={"approved": True})
        assert decided.status_code == 200, decided.text
    with quotas.client(flooder) as agent:
        assert agent.post("/function_calls", json=call(refused_id)).status_code == 200
        assert agent.post("/function_calls", json=call(new_id())).status_code == 429


def test_concurrent_creates_cannot_slip_past_the_quota(quotas: Quotas) -> None:
    flooder = quotas.token()

    def one(_: int) -> int:
        with quotas.client(flooder) as agent:
            return agent.post("/function_calls", json=call(new_id())).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(one, range(3 * PENDING_QUOTA)))
    assert sorted(set(codes)) == [200, 429], codes
    assert codes.count(200) == PENDING_QUOTA, codes
    with quotas.client(flooder) as agent:
        pending = agent.get("/function_calls", params={"pending": True, "limit": 1000}).json()
    mine = [c for c in pending["items"] if c["run_id"] == "flood"]
    assert len(mine) >= PENDING_QUOTA  # the other tests' calls are in the same project


def test_the_agent_client_fails_closed_with_the_quota_in_its_error(quotas: Quotas) -> None:
    flooder = quotas.token()
    with quotas.client(flooder) as agent:
        for _ in range(PENDING_QUOTA):
            assert agent.post("/function_calls", json=call(new_id())).status_code == 200
    # The client retries a 429 (honouring Retry-After) for retry_for seconds, then fails.
    backend = HttpBackend(quotas.server.api_base, flooder, retry_for=2.0)
    fl = FunctionLayer(backend=backend, timeout=5)
    ran: list[int] = []

    @fl.require_approval()
    def wire_money(amount: int) -> str:
        ran.append(amount)
        return "sent"

    began = time.monotonic()
    with call_id_scope(new_id()):
        result = wire_money(1)
    assert time.monotonic() - began < 15
    assert ran == []
    # The guard fails closed and tells the model why (the server's 429 and its quota).
    assert "429" in str(result) and f"quota is {PENDING_QUOTA}" in str(result), result
    with pytest.raises(BackendUnavailableError, match=f"quota is {PENDING_QUOTA}"):
        backend.create_function_call(FunctionCall.model_validate(call(new_id())))


# -- long-polls --------------------------------------------------------------------------------


def _pending_call(quotas: Quotas, token: str) -> str:
    call_id = new_id()
    with quotas.client(token) as agent:
        assert agent.post("/function_calls", json=call(call_id)).status_code == 200
    return call_id


def _hold(server: ServerProcess, token: str, call_id: str, wait: float) -> socket.socket:
    """A long-poll on a raw connection (closing the socket is the client going away); returns
    once the server has it open (the request was read; it answers only later)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        (
            f"GET /functionlayer/v1/function_calls/{call_id}?wait={wait} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    return sock


def _long_poll(quotas: Quotas, token: str, call_id: str, wait: float) -> httpx.Response:
    with quotas.client(token) as agent:
        return agent.get(f"/function_calls/{call_id}", params={"wait": wait})


def _waiting(quotas: Quotas) -> int:
    return int(httpx.get(f"{quotas.server.base_url}/healthz").json()["waiting"])


def _wait_until_held(quotas: Quotas, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _waiting(quotas) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the server never held {count} long-polls")


def _answered_within(quotas: Quotas, token: str, call_id: str, seconds: float) -> bool:
    """Whether a new long-poll of ``token`` is accepted (not 429) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _long_poll(quotas, token, call_id, 0.05).status_code == 200:
            return True
        time.sleep(0.05)
    return False


def test_long_poll_quota_refuses_one_more_and_spares_other_agents(quotas: Quotas) -> None:
    flooder, other = quotas.token(), quotas.token()
    call_id = _pending_call(quotas, flooder)
    base = _waiting(quotas)
    held = [_hold(quotas.server, flooder, call_id, 30) for _ in range(LONG_POLL_QUOTA)]
    try:
        _wait_until_held(quotas, base + LONG_POLL_QUOTA)
        began = time.monotonic()
        refused = _long_poll(quotas, flooder, call_id, 5)
        assert refused.status_code == 429, refused.text
        assert time.monotonic() - began < 2  # refused at once, not held
        body = refused.json()
        assert body["code"] == "quota_exceeded"
        assert f"quota is {LONG_POLL_QUOTA}" in body["detail"]
        assert "FUNCTIONLAYER_SERVER_MAX_LONG_POLLS_PER_TOKEN" in body["detail"]
        assert int(refused.headers["Retry-After"]) > 0
        # Without ?wait= the flooder still reads its request.
        with quotas.client(flooder) as agent:
            assert agent.get(f"/function_calls/{call_id}").status_code == 200
        # Another agent long-polls as usual, and is woken by the decision.
        other_id = _pending_call(quotas, other)
        box: dict[str, httpx.Response] = {}
        waiter = threading.Thread(
            target=lambda: box.update(answer=_long_poll(quotas, other, other_id, 20))
        )
        waiter.start()
        _wait_until_held(quotas, base + LONG_POLL_QUOTA + 1)
        with closing(inbox(quotas.server)) as browser:
            assert browser.get("/inbox").status_code == 200
        with quotas.client(quotas.alice_token) as alice:
            alice.post(f"/agent/function_calls/{other_id}/respond", json={"approved": True})
        waiter.join(10)
        assert box["answer"].status_code == 200
        assert box["answer"].json()["status"]["approved"] is True
    finally:
        for sock in held:
            sock.close()


def test_a_long_polls_place_is_given_back_when_the_client_goes_away(quotas: Quotas) -> None:
    flooder = quotas.token()
    call_id = _pending_call(quotas, flooder)
    base = _waiting(quotas)
    held = [_hold(quotas.server, flooder, call_id, 50) for _ in range(LONG_POLL_QUOTA)]
    _wait_until_held(quotas, base + LONG_POLL_QUOTA)
    assert _long_poll(quotas, flooder, call_id, 1).status_code == 429
    for sock in held:
        sock.close()
    # Given back at once, not when the 50 s wait would have ended.
    assert _answered_within(quotas, flooder, call_id, 5), (
        "the long-polls' places were not given back when their clients went away"
    )


def test_a_long_polls_place_is_given_back_when_it_times_out_or_is_answered(
    quotas: Quotas,
) -> None:
    flooder = quotas.token()
    call_id = _pending_call(quotas, flooder)
    with ThreadPoolExecutor(max_workers=LONG_POLL_QUOTA) as pool:
        timed = [pool.submit(_long_poll, quotas, flooder, call_id, 1) for _ in range(3)]
        assert [f.result().status_code for f in timed] == [200] * LONG_POLL_QUOTA
    assert _answered_within(quotas, flooder, call_id, 1)
    base = _waiting(quotas)
    held = [_hold(quotas.server, flooder, call_id, 50) for _ in range(LONG_POLL_QUOTA)]
    try:
        _wait_until_held(quotas, base + LONG_POLL_QUOTA)
        with quotas.client(quotas.alice_token) as alice:
            alice.post(f"/agent/function_calls/{call_id}/respond", json={"approved": True})
        for sock in held:
            assert b"200 OK" in sock.recv(65536)
        assert _answered_within(quotas, flooder, call_id, 5)
    finally:
        for sock in held:
            sock.close()
