"""The server's share of the guarantee, in process (TestClient, SQLite in tmp_path): a decision
is made once and never overwritten, only a person decides, an agent may always give up on its own
request, old sessions stop working, and webhook signatures cannot be replayed or guessed."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from functionlayer_server import verify_webhook_signature
from functionlayer_server._app import create_app
from functionlayer_server._errors import AlreadyDecidedError
from functionlayer_server._inbox._session import COOKIE_NAME, Session, SessionCodec
from functionlayer_server._settings import Settings

from packages.server.tests._test_client import InProcessApp
from tests._support.inbox import person_decides

SECRET_KEY = "test-secret-key-for-guarantee-tests"
PASSWORD = "s3cret-password"


@dataclass
class Server(InProcessApp):
    token: str

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The agent API with the agent's token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.request(method, "/functionlayer/v1" + path, headers=headers, **kwargs)

    def create(self, call_id: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("fn", "transfer")
        spec.setdefault("kwargs", {"amount": 10})
        body = {"run_id": "run-1", "call_id": call_id, "spec": spec}
        response = self.api("POST", "/function_calls", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def status(self, call_id: str) -> dict[str, Any]:
        response = self.api("GET", f"/function_calls/{call_id}")
        assert response.status_code == 200, response.text
        return dict(response.json()["status"])

    def actions(self, call_id: str) -> list[str]:
        response = self.api("GET", f"/function_calls/{call_id}/audit")
        return [entry["action"] for entry in response.json()["items"]]


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One app for the module (its tests use distinct call ids)."""
    directory = tmp_path_factory.mktemp("guarantee")
    settings = Settings(
        database_url=f"sqlite:///{directory / 'guarantee.sqlite3'}", secret_key=SECRET_KEY
    )
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        box = Server(client, service, token="")
        box.token = box.run(service.create_token, "agent")
        box.run(service.create_user, "alice", PASSWORD, email="alice@example.com")
        yield box


@pytest.fixture
def server(module_server: Server) -> Iterator[Server]:
    yield module_server
    module_server.client.cookies.clear()


# -- a decision stands -------------------------------------------------------------------------


def test_an_agent_giving_up_after_the_approval_does_not_overwrite_it(server: Server) -> None:
    server.create("decided-1")
    person_decides(server, "decided-1", approved=True)

    # The agent's deadline passes at the same moment: its expiry comes second and is refused.
    late = server.api(
        "POST", "/agent/function_calls/decided-1/respond", json={"expired": True, "comment": "late"}
    )

    assert late.status_code == 409, late.text
    status = server.status("decided-1")
    assert status["approved"] is True and not status["expired"]
    assert status["responded_by"] == "alice"
    assert server.actions("decided-1") == ["created", "approved"]


def test_a_rejection_is_not_overwritten_by_a_forced_expiry_either(server: Server) -> None:
    server.create("decided-2")
    person_decides(server, "decided-2", approved=False, comment="not today")

    expired = server.run(server.service.expire, "function_call", "decided-2", force=True)

    assert expired is False
    status = server.status("decided-2")
    assert status["approved"] is False and status["comment"] == "not today"
    assert not status["expired"]


# -- an agent may always give up on its own request -------------------------------------------


def test_an_agents_own_expiry_closes_the_request_before_any_deadline(server: Server) -> None:
    server.create("give-up-1")  # no timeout: the server would never expire it by itself

    gave_up = server.api(
        "POST",
        "/agent/function_calls/give-up-1/respond",
        json={"expired": True, "comment": "the user cancelled the task"},
    )

    assert gave_up.status_code == 200, gave_up.text
    status = gave_up.json()["status"]
    assert status["expired"] is True and status["approved"] is False
    assert status["comment"] == "the user cancelled the task"
    # Nobody can approve what the agent no longer waits for.
    with pytest.raises(AlreadyDecidedError):
        person_decides(server, "give-up-1", approved=True)
    assert server.status("give-up-1")["approved"] is False


# -- the server owns the status ---------------------------------------------------------------


def test_a_client_cannot_create_an_already_approved_call(server: Server) -> None:
    forged = {
        "run_id": "run-1",
        "call_id": "forged-2",
        "spec": {"fn": "transfer", "kwargs": {"amount": 1000000}},
        "status": {
            "approved": True,
            "responded_by": "alice",
            "responded_via": "inbox",
            "edited_kwargs": {"amount": 1000000},
        },
    }

    response = server.api("POST", "/function_calls", json=forged)

    assert response.status_code == 200, response.text
    for status in (response.json()["status"], server.status("forged-2")):
        assert status["approved"] is None and status["responded_by"] is None
        assert status["edited_kwargs"] is None
    pending = server.api("GET", "/function_calls", params={"pending": "true"}).json()["items"]
    assert "forged-2" in [item["call_id"] for item in pending]
    # It still waits for a real person.
    decided = person_decides(server, "forged-2", approved=False, comment="no")
    assert decided.status is not None and decided.status.approved is False


# -- inbox sessions expire --------------------------------------------------------------------


def _cookie(session_id: str, *, age: float) -> tuple[str, str]:
    session = Session(sid=session_id, csrf="csrf-test", issued_at=int(time.time() - age))
    return SessionCodec(SECRET_KEY).dumps(session), session.csrf


def test_an_inbox_session_older_than_its_max_age_is_logged_out(server: Server) -> None:
    server.create("session-1")
    max_age = SessionCodec(SECRET_KEY).max_age
    # A real server-side session of alice's, in cookies signed by this server.
    started = server.run(server.service.accounts.start_session, "alice", max_age)

    # Issued just past its max age: no longer logged in, and nothing can be decided with it.
    old, csrf = _cookie(started.session_id, age=max_age + 60)
    server.client.cookies.set(COOKIE_NAME, old, path="/inbox")
    page = server.client.get("/inbox", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/inbox/login")
    refused = server.client.post(
        "/inbox/calls/session-1",
        data={"action": "approve", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert refused.status_code in (303, 403), refused.text
    assert server.status("session-1")["approved"] is None

    # The same session within its max age works (the test's control).
    fresh, csrf = _cookie(started.session_id, age=max_age - 60)
    server.client.cookies.clear()
    server.client.cookies.set(COOKIE_NAME, fresh, path="/inbox")
    assert server.client.get("/inbox", follow_redirects=False).status_code == 200

    # The server enforces the session's own expiry too, whatever the cookie says.
    expired = server.run(server.service.accounts.start_session, "alice", 0.001)
    time.sleep(0.01)
    recent, _ = _cookie(expired.session_id, age=0)
    server.client.cookies.clear()
    server.client.cookies.set(COOKIE_NAME, recent, path="/inbox")
    assert server.client.get("/inbox", follow_redirects=False).status_code == 303


# -- webhook signatures -----------------------------------------------------------------------

WEBHOOK_SECRET = "whsec-test"
BODY = b'{"type":"function_call.completed","event":{"call_id":"c1"}}'


def _sign(timestamp: int, body: bytes = BODY) -> str:
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def test_a_webhook_signature_verifies_only_within_its_timestamp_window() -> None:
    now = int(time.time())
    assert verify_webhook_signature(WEBHOOK_SECRET, BODY, str(now), _sign(now))
    # A genuine delivery captured and replayed ten minutes later (or dated in the future).
    for ts in (now - 600, now + 600):
        assert not verify_webhook_signature(WEBHOOK_SECRET, BODY, str(ts), _sign(ts)), ts
    assert not verify_webhook_signature(
        WEBHOOK_SECRET, BODY, str(now - 100), _sign(now - 100), tolerance_seconds=60
    )


def test_a_webhook_signature_must_match_in_full() -> None:
    now = int(time.time())
    good = _sign(now)
    last = good[-1]
    wrong_tail = good[:-1] + ("0" if last != "0" else "1")
    wrong_middle = good[:40] + ("0" if good[40] != "0" else "1") + good[41:]
    for forged in (
        wrong_tail,
        wrong_middle,
        good[:-8],  # truncated
        good[: len("v1=") + 16],  # just a prefix
        good + "00",  # extended
        _sign(now, BODY + b" "),  # another body's signature
        "",
    ):
        assert not verify_webhook_signature(WEBHOOK_SECRET, BODY, str(now), forged), forged
