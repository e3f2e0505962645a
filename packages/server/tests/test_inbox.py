"""Fast tests of the web inbox through the real app (TestClient, SQLite in tmp_path)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from functionlayer import (
    ApprovalPolicy,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    HumanContact,
    HumanContactSpec,
    ResponseOption,
)
from functionlayer_server._app import create_app
from functionlayer_server._errors import NotFoundError
from functionlayer_server._settings import Settings

from packages.server.tests._test_client import InProcessApp
from tests._support.inbox import csrf_of, log_in

PASSWORD = "s3cret-password"


class Inbox(InProcessApp):
    def add_call(self, call_id: str, fn: str = "transfer", **spec: Any) -> FunctionCall:
        spec.setdefault("kwargs", {"amount": 10})
        call = FunctionCall(run_id="run-1", call_id=call_id, spec=FunctionCallSpec(fn=fn, **spec))
        stored, _ = self.run(self.service.create_function_call, call)
        return stored

    def add_contact(self, call_id: str, **spec: Any) -> HumanContact:
        spec.setdefault("msg", "Which one?")
        contact = HumanContact(run_id="run-1", call_id=call_id, spec=HumanContactSpec(**spec))
        stored, _ = self.run(self.service.create_human_contact, contact)
        return stored

    def call(self, call_id: str) -> FunctionCall:
        return self.run(self.service.get_function_call, call_id)

    def contact(self, call_id: str) -> HumanContact:
        return self.run(self.service.get_human_contact, call_id)

    def login(self, username: str = "alice") -> str:
        """Log in through the form; returns the session's CSRF token."""
        log_in(self.client, username, PASSWORD)
        return csrf_of(self.client.get("/inbox").text)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'inbox.sqlite3'}")
    with TestClient(create_app(settings)) as client:
        box = Inbox(client, client.app.state.service)  # type: ignore[attr-defined]
        box.run(box.service.create_user, "alice", PASSWORD, email="alice@example.com")
        box.run(box.service.create_user, "bob", PASSWORD)
        yield box


# -- login ------------------------------------------------------------------------------------


def test_every_page_requires_login(inbox: Inbox) -> None:
    inbox.add_call("c1")
    for path in ("/inbox", "/inbox/calls/c1", "/inbox/contacts/x"):
        response = inbox.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/inbox/login?next=")
    assert inbox.client.get("/inbox/fragment").status_code == 401
    assert inbox.client.get("/inbox/changes?since=0").status_code == 401
    # Posting a decision without a session is refused and decides nothing.
    response = inbox.client.post("/inbox/calls/c1", data={"action": "approve"})
    assert response.status_code == 403
    assert inbox.call("c1").status.approved is None  # type: ignore[union-attr]


def test_login_sets_a_signed_httponly_lax_cookie_and_rejects_bad_passwords(inbox: Inbox) -> None:
    token = csrf_of(inbox.client.get("/inbox/login").text)
    bad = inbox.client.post(
        "/inbox/login",
        data={"username": "alice", "password": "wrong", "csrf_token": token},
        follow_redirects=False,
    )
    assert bad.status_code == 401
    assert "Wrong username or password" in bad.text
    assert inbox.client.get("/inbox", follow_redirects=False).status_code == 303

    good = inbox.client.post(
        "/inbox/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert good.status_code == 303
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert inbox.client.get("/inbox").status_code == 200

    # A tampered cookie is ignored: the visitor is logged out.
    name, value = next(iter(inbox.client.cookies.items()))
    inbox.client.cookies.clear()
    inbox.client.cookies.set(
        name, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), path="/inbox"
    )
    assert inbox.client.get("/inbox", follow_redirects=False).status_code == 303


def test_login_redirect_stays_on_the_inbox(inbox: Inbox) -> None:
    token = csrf_of(inbox.client.get("/inbox/login").text)
    for target, expected in [
        ("https://evil.example/", "/inbox"),
        ("//evil.example/inbox", "/inbox"),
        ("/inbox/calls/c1", "/inbox/calls/c1"),
    ]:
        inbox.client.cookies.clear()
        token = csrf_of(inbox.client.get("/inbox/login").text)
        response = inbox.client.post(
            "/inbox/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_logout_ends_the_session(inbox: Inbox) -> None:
    token = inbox.login()
    assert inbox.client.post("/inbox/logout", data={}).status_code == 403
    response = inbox.client.post(
        "/inbox/logout", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert inbox.client.get("/inbox", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_server_side(inbox: Inbox) -> None:
    inbox.login()
    saved = dict(inbox.client.cookies.items())
    token = csrf_of(inbox.client.get("/inbox").text)
    inbox.client.post("/inbox/logout", data={"csrf_token": token}, follow_redirects=False)
    # The old cookie, replayed, no longer opens the inbox: the session ended on the server.
    inbox.client.cookies.clear()
    for name, value in saved.items():
        inbox.client.cookies.set(name, value, path="/inbox")
    assert inbox.client.get("/inbox", follow_redirects=False).status_code == 303


def test_requests_routed_to_a_stranger_are_refused(inbox: Inbox) -> None:
    from functionlayer_server._errors import RoutingRefusedError

    with pytest.raises(RoutingRefusedError):
        inbox.add_call("for-mallory", channel=ContactChannel(users=["mallory"]))
    with pytest.raises(NotFoundError):
        inbox.call("for-mallory")


# -- CSRF -------------------------------------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused(inbox: Inbox) -> None:
    inbox.add_call("c1")
    token = inbox.login()
    for data, headers in [
        ({"action": "approve"}, {}),
        ({"action": "approve", "csrf_token": "forged"}, {}),
        ({"action": "approve", "csrf_token": token}, {"Origin": "https://evil.example"}),
        ({"action": "approve", "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]:
        response = inbox.client.post("/inbox/calls/c1", data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
        assert "refused" in response.text
    assert inbox.call("c1").status.approved is None  # type: ignore[union-attr]

    # The same form from the inbox itself goes through.
    response = inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "approve", "csrf_token": token},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert inbox.call("c1").status.approved is True  # type: ignore[union-attr]


def test_login_form_needs_its_csrf_token(inbox: Inbox) -> None:
    inbox.client.get("/inbox/login")
    response = inbox.client.post(
        "/inbox/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403


def test_the_csrf_token_changes_at_login(inbox: Inbox) -> None:
    before = csrf_of(inbox.client.get("/inbox/login").text)
    after = inbox.login()
    assert before != after


# -- visibility -------------------------------------------------------------------------------


def test_a_request_routed_elsewhere_is_404_for_others(inbox: Inbox) -> None:
    inbox.add_call("for-bob", fn="bobs_fn", channel=ContactChannel(users=["bob"]))
    inbox.add_contact("ask-bob", msg="bob only", channel=ContactChannel(users=["bob"]))
    token = inbox.login("alice")
    assert "bobs_fn" not in inbox.client.get("/inbox").text
    assert "bob only" not in inbox.client.get("/inbox").text
    assert inbox.client.get("/inbox/calls/for-bob").status_code == 404
    assert inbox.client.get("/inbox/contacts/ask-bob").status_code == 404
    assert inbox.client.get("/inbox/calls/no-such-call").status_code == 404
    response = inbox.client.post(
        "/inbox/calls/for-bob", data={"action": "approve", "csrf_token": token}
    )
    assert response.status_code == 404
    response = inbox.client.post(
        "/inbox/contacts/ask-bob", data={"response": "yes", "csrf_token": token}
    )
    assert response.status_code == 404
    assert inbox.call("for-bob").status.approved is None  # type: ignore[union-attr]
    assert inbox.contact("ask-bob").status.response is None  # type: ignore[union-attr]

    inbox.client.cookies.clear()
    inbox.login("bob")
    assert "bobs_fn" in inbox.client.get("/inbox").text
    assert inbox.client.get("/inbox/calls/for-bob").status_code == 200


# -- decisions --------------------------------------------------------------------------------


def test_deciding_twice_shows_a_clear_409(inbox: Inbox) -> None:
    inbox.add_call("c1")
    token = inbox.login()
    first = inbox.client.post(
        "/inbox/calls/c1", data={"action": "approve", "csrf_token": token}, follow_redirects=False
    )
    assert first.status_code == 303
    second = inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "reject", "feedback": "changed my mind", "csrf_token": token},
    )
    assert second.status_code == 409
    assert "already decided" in second.text
    status = inbox.call("c1").status
    assert status is not None
    assert status.approved is True and status.comment is None
    assert status.responded_by == "alice"
    page = inbox.client.get("/inbox/calls/c1").text
    assert 'id="decide"' not in page  # no forms on a decided request
    assert "alice" in page


def test_invalid_edited_json_decides_nothing(inbox: Inbox) -> None:
    inbox.add_call("c1", kwargs={"amount": 10, "to": "x"})
    token = inbox.login()
    for text, message in [
        ('{"amount": 5,', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"just a string"', "must be a JSON object"),
    ]:
        response = inbox.client.post(
            "/inbox/calls/c1",
            data={"action": "edit", "edited_kwargs": text, "csrf_token": token},
        )
        assert response.status_code == 422
        assert message in response.text
        assert inbox.call("c1").status.approved is None  # type: ignore[union-attr]

    response = inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "edit", "edited_kwargs": '{"amount": 5, "to": "x"}', "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    status = inbox.call("c1").status
    assert status is not None
    assert status.approved is True
    assert status.edited_kwargs == {"amount": 5, "to": "x"}


def test_unchanged_edit_is_a_plain_approval(inbox: Inbox) -> None:
    inbox.add_call("c1", kwargs={"amount": 10})
    token = inbox.login()
    inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "edit", "edited_kwargs": '{ "amount": 10 }', "csrf_token": token},
    )
    status = inbox.call("c1").status
    assert status is not None and status.approved is True and status.edited_kwargs is None


def test_reject_needs_feedback_or_an_option(inbox: Inbox) -> None:
    options = [ResponseOption(name="too_much", title="Too much", prompt_fill="Lower the amount.")]
    inbox.add_call("c1", reject_options=options)
    token = inbox.login()
    page = inbox.client.get("/inbox/calls/c1").text
    assert 'value="too_much"' in page and "Too much" in page

    response = inbox.client.post(
        "/inbox/calls/c1", data={"action": "reject", "feedback": "  ", "csrf_token": token}
    )
    assert response.status_code == 422
    assert "required" in response.text
    response = inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "reject", "reject_option_name": "nope", "csrf_token": token},
    )
    assert response.status_code == 422
    assert inbox.call("c1").status.approved is None  # type: ignore[union-attr]

    inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "reject", "reject_option_name": "too_much", "csrf_token": token},
    )
    status = inbox.call("c1").status
    assert status is not None
    assert status.approved is False
    assert status.reject_option_name == "too_much"
    assert status.comment == "Lower the amount."


def test_respond_instead_and_answer_a_contact(inbox: Inbox) -> None:
    inbox.add_call("c1")
    inbox.add_contact(
        "h1", msg="Which region?", response_options=[ResponseOption(name="eu", title="EU")]
    )
    token = inbox.login()
    response = inbox.client.post(
        "/inbox/calls/c1", data={"action": "respond", "response": "", "csrf_token": token}
    )
    assert response.status_code == 422
    inbox.client.post(
        "/inbox/calls/c1",
        data={"action": "respond", "response": "Use the cached value.", "csrf_token": token},
    )
    status = inbox.call("c1").status
    assert status is not None
    assert status.approved is False and status.response == "Use the cached value."

    assert (
        inbox.client.post(
            "/inbox/contacts/h1", data={"response": "", "csrf_token": token}
        ).status_code
        == 422
    )
    response = inbox.client.post(
        "/inbox/contacts/h1",
        data={"response": "", "response_option_name": "eu", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    contact_status = inbox.contact("h1").status
    assert contact_status is not None
    assert contact_status.response == "EU" and contact_status.response_option_name == "eu"
    again = inbox.client.post("/inbox/contacts/h1", data={"response": "x", "csrf_token": token})
    assert again.status_code == 409
    assert "already answered" in again.text


# -- untrusted content ------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_llm_text_is_escaped_everywhere(inbox: Inbox) -> None:
    inbox.add_call(
        "c1",
        fn="post",
        kwargs={"body": SCRIPT, "title": IMG},
        description=SCRIPT,
        reject_options=[ResponseOption(name="o", title=IMG, description=SCRIPT)],
    )
    inbox.add_contact("h1", msg=IMG, subject=SCRIPT)
    inbox.login()
    pages = [
        inbox.client.get("/inbox"),
        inbox.client.get("/inbox/fragment"),
        inbox.client.get("/inbox/calls/c1"),
        inbox.client.get("/inbox/contacts/h1"),
    ]
    for response in pages:
        assert response.status_code == 200
        for raw in ("<script>alert", "<img src=x"):
            assert raw not in response.text, response.url
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text or "&lt;img" in response.text
        )
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[3].text
    detail = pages[2]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail.text
    # The edit box holds the JSON as escaped text too.
    textarea = re.search(r'<textarea name="edited_kwargs"[^>]*>(.*?)</textarea>', detail.text, re.S)
    assert textarea is not None and "&lt;img src=x onerror=alert(1)&gt;" in textarea.group(1)


def test_pages_send_a_strict_content_security_policy(inbox: Inbox) -> None:
    inbox.add_call("c1")
    login_page = inbox.client.get("/inbox/login")
    inbox.login()
    for response in (login_page, inbox.client.get("/inbox"), inbox.client.get("/inbox/calls/c1")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in inbox.client.get("/inbox").text.replace(" ", "")  # no inline script
    css = inbox.client.get("/inbox/static/inbox.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert inbox.client.get("/inbox/static/../_router.py").status_code == 404


# -- live updates -----------------------------------------------------------------------------


def test_changes_endpoint_reports_new_requests(inbox: Inbox) -> None:
    inbox.login()
    version = inbox.client.get("/inbox/changes?since=-1").json()["version"]
    inbox.add_call("c-new", fn="fresh_fn")
    changed = inbox.client.get(f"/inbox/changes?since={version}").json()["version"]
    assert changed != version
    assert "fresh_fn" in inbox.client.get("/inbox/fragment").text


def test_quorum_progress_and_a_second_approval_by_the_same_person(inbox: Inbox) -> None:
    inbox.add_call("q1", policy=ApprovalPolicy(approvals_required=2, responders=["alice", "bob"]))
    token = inbox.login("alice")
    inbox.client.post("/inbox/calls/q1", data={"action": "approve", "csrf_token": token})
    page = inbox.client.get("/inbox/calls/q1")
    assert "Needs 2 approvals; approved so far by alice" in page.text
    assert 'id="decide"' in page.text  # still open for the second approver
    again = inbox.client.post("/inbox/calls/q1", data={"action": "approve", "csrf_token": token})
    assert again.status_code == 409
    assert "alice already approved" in again.text

    inbox.client.cookies.clear()
    token = inbox.login("bob")
    inbox.client.post("/inbox/calls/q1", data={"action": "approve", "csrf_token": token})
    status = inbox.call("q1").status
    assert status is not None and status.approved is True and status.approvals == ["alice", "bob"]


def test_an_expired_request_cannot_be_decided(inbox: Inbox) -> None:
    inbox.add_call("e1", timeout_seconds=0.2)
    token = inbox.login()
    time.sleep(0.4)
    page = inbox.client.get("/inbox/calls/e1")
    assert "Expired without an answer" in page.text
    assert 'id="decide"' not in page.text
    response = inbox.client.post("/inbox/calls/e1", data={"action": "approve", "csrf_token": token})
    assert response.status_code == 409
    status = inbox.call("e1").status
    assert status is not None and status.approved is False and status.expired


def test_the_root_opens_the_inbox(inbox: Inbox) -> None:
    response = inbox.client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/inbox"


def test_the_list_reads_the_pending_requests_once_however_many(inbox: Inbox) -> None:
    """Over a thousand pending requests: listed in one pass per kind (it used to list them
    all again from the start for each further thousand, on every refresh of every inbox)."""

    async def add_many() -> None:
        for n in range(1003):
            call = FunctionCall(
                run_id="run-1", call_id=f"many-{n}", spec=FunctionCallSpec(fn="f", kwargs={})
            )
            await inbox.service.create_function_call(call)

    inbox.run(add_many)
    inbox.login()
    store = inbox.service.store
    listed: list[tuple[str, bool | None]] = []
    original = store.list_requests

    async def counting(kind: str, **kwargs: Any) -> Any:
        listed.append((kind, kwargs.get("pending")))
        return await original(kind, **kwargs)

    store.list_requests = counting
    try:
        page = inbox.client.get("/inbox")
    finally:
        store.list_requests = original
    assert page.status_code == 200
    assert "(1003 waiting)" in page.text
    assert listed.count(("function_call", True)) == 1, listed


def test_requester_state_endpoint_and_the_irreversible_confirm_step(inbox: Inbox) -> None:
    token = inbox.run(inbox.service.create_token, "billing-bot")
    created = inbox.client.post(
        "/functionlayer/v1/function_calls",
        json={
            "run_id": "r",
            "call_id": "irrev-inbox",
            "spec": {"fn": "wire_money", "kwargs": {"amount": 2_500_000}, "irreversible": True},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 200, created.text
    csrf = inbox.login()
    listing = inbox.client.get("/inbox").text
    assert "agent:billing-bot · project default" in listing
    assert "amount=2,500,000" in listing
    page = inbox.client.get("/inbox/calls/irrev-inbox").text
    assert 'id="requested-by">agent:billing-bot · project default<' in page
    assert inbox.client.get("/inbox/state/calls/irrev-inbox").json() == {"state": "pending|0|"}

    first = inbox.client.post(
        "/inbox/calls/irrev-inbox", data={"csrf_token": csrf, "action": "approve"}
    )
    assert first.status_code == 200
    assert 'id="confirm-irreversible"' in first.text
    assert inbox.call("irrev-inbox").status.approved is None  # type: ignore[union-attr]
    confirmed = inbox.client.post(
        "/inbox/calls/irrev-inbox",
        data={"csrf_token": csrf, "action": "approve", "confirmed_irreversible": "1"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303, confirmed.text
    assert inbox.call("irrev-inbox").status.approved is True  # type: ignore[union-attr]
    state = inbox.client.get("/inbox/state/calls/irrev-inbox").json()["state"]
    assert state.startswith("approved|")


def test_an_edited_approval_of_an_irreversible_call_is_confirmed_with_the_same_edits(
    inbox: Inbox,
) -> None:
    inbox.add_call(
        "irrev-edit",
        fn="wire_money",
        kwargs={"amount": 9000},
        parameters={"type": "object", "properties": {"amount": {"type": "integer"}}},
        irreversible=True,
    )
    csrf = inbox.login()
    first = inbox.client.post(
        "/inbox/calls/irrev-edit",
        data={"csrf_token": csrf, "action": "edit", "arg.amount": "900"},
    )
    assert first.status_code == 200 and 'id="confirm-irreversible"' in first.text
    assert inbox.call("irrev-edit").status.approved is None  # type: ignore[union-attr]
    form = first.text[first.text.index('id="confirm-form"') :]
    form = form[: form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert fields["action"] == "edit" and fields["arg.amount"] == "900"
    assert fields["confirmed_irreversible"] == "1"
    done = inbox.client.post("/inbox/calls/irrev-edit", data=fields, follow_redirects=False)
    assert done.status_code == 303, done.text
    status = inbox.call("irrev-edit").status
    assert status is not None and status.approved is True
    assert status.edited_kwargs == {"amount": 900}
    page = inbox.client.get("/inbox/calls/irrev-edit").text
    assert 'id="comparison"' in page and "9,000" in page
