"""The web inbox driven in Debian chromium against a real server and real core agents.

Each test runs an agent's guarded call (``FunctionLayer(approval_method=CLOUD)``) in a thread
against the running server, answers it in the browser, and checks what the agent got back and
whether the function body ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from functionlayer import ApprovalMethod, FunctionLayer, ResponseOption
from pydantic import Field

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
AGENT_WAIT = 30.0  # seconds a test waits for the agent thread to get its answer


@pytest.fixture
def agent(server: Any, monkeypatch: pytest.MonkeyPatch) -> FunctionLayer:
    """A core client pointed at the server the way users do it: environment variables."""
    monkeypatch.setenv("FUNCTIONLAYER_API_BASE", server.api_base)
    monkeypatch.setenv("FUNCTIONLAYER_API_TOKEN", server.token)
    return FunctionLayer(approval_method=ApprovalMethod.CLOUD, run_id="browser-agent", timeout=60)


@pytest.fixture
def in_thread() -> Iterator[Callable[..., Future[Any]]]:
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="agent")
    try:
        yield pool.submit
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def alice(server: Any) -> str:
    server.create_user("alice", PASSWORD, email="alice@example.com")
    return "alice"


def shown_arguments(page: Any) -> dict[str, str]:
    """The arguments as the page shows them, in the order it shows them."""
    values = page.locator("#kwargs pre.arg-value")
    return {
        values.nth(i).get_attribute("data-arg"): values.nth(i).inner_text()
        for i in range(values.count())
    }


def open_request(page: Any, fn: str) -> None:
    """Wait for the request to show up in the live list (no reload) and open it."""
    page.locator("tr.request-row", has_text=fn).locator("a.title").click()
    page.wait_for_selector("#decide")


def test_reject_with_feedback_end_to_end(
    server: Any,
    page: Any,
    login: Any,
    dialogs: Any,
    agent: FunctionLayer,
    alice: str,
    in_thread: Any,
    tmp_path: Path,
) -> None:
    ran: list[dict[str, Any]] = []

    @agent.require_approval()
    def wire_money(amount: int, to: str) -> str:
        """Send money from the company account."""
        ran.append({"amount": amount, "to": to})
        return "sent"

    login(page, server.base_url, alice, PASSWORD)
    assert page.locator("tr.request-row", has_text="wire_money").count() == 0
    # A marker on the live page: it survives only if the page is never reloaded.
    page.evaluate("window.__notReloaded = true")

    result = in_thread(wire_money, amount=25_000, to="acct-991")
    row = page.locator("tr.request-row", has_text="wire_money")
    row.wait_for()  # appears through the long-poll, not a reload
    assert page.evaluate("window.__notReloaded") is True
    assert "acct-991" in row.inner_text()
    assert "browser-agent" in row.inner_text()
    page.screenshot(path=str(tmp_path / "inbox-list.png"), full_page=True)

    open_request(page, "wire_money")
    assert page.locator("#fn-name").inner_text() == "wire_money"
    assert "Send money from the company account." in page.locator("#docstring").inner_text()
    assert shown_arguments(page) == {"amount": "25,000", "to": "acct-991"}  # formatted
    page.screenshot(path=str(tmp_path / "inbox-detail.png"), full_page=True)

    feedback = "Too much in one go; split it into two transfers under 10k."
    page.fill("#feedback", feedback)
    page.click("#reject")
    page.wait_for_selector("#outcome")

    assert result.result(timeout=AGENT_WAIT) == f"User denied wire_money with feedback: {feedback}"
    assert ran == []
    outcome = page.locator("#outcome").inner_text()
    assert "rejected" in outcome.lower()
    assert "alice" in outcome
    assert feedback in outcome
    assert page.locator("#decide").count() == 0  # no decision forms on a decided request
    assert "alice" in page.locator("#audit").inner_text()
    page.screenshot(path=str(tmp_path / "inbox-decided.png"), full_page=True)
    assert dialogs.messages == []


def test_approve_with_edited_arguments(
    server: Any, page: Any, login: Any, agent: FunctionLayer, alice: str, in_thread: Any
) -> None:
    """The edit form is generated from the function's schema (sent with the request)."""
    ran: list[tuple[int, int]] = []

    @agent.require_approval()
    def multiply(x: Annotated[int, Field(ge=1)], y: int) -> int:
        ran.append((x, y))
        return x * y

    login(page, server.base_url, alice, PASSWORD)
    result = in_thread(multiply, x=2, y=3)
    open_request(page, "multiply")

    page.click("#edit-section summary")
    assert page.locator("#arg-x").get_attribute("type") == "number"
    assert page.locator("#edited-kwargs").count() == 0  # typed fields, not raw JSON
    # An edit the schema refuses: the error next to the field, nothing decided, input kept.
    page.fill("#arg-x", "0")
    page.click("#approve-edited")
    assert "minimum of 1" in page.locator("#arg-x-error").inner_text()
    assert page.locator("#decide").is_visible()
    assert page.locator("#arg-x").input_value() == "0"
    assert page.locator("#status-badge").inner_text() == "pending"
    assert not result.done()

    page.fill("#arg-x", "5")
    page.click("#approve-edited")
    page.wait_for_selector("#outcome")

    answer = result.result(timeout=AGENT_WAIT)
    assert ran == [(5, 3)]
    assert "15" in str(answer)
    assert "approved with edits" in page.locator("#outcome").inner_text().lower()


def test_respond_instead_without_javascript(
    server: Any, browser: Any, login: Any, agent: FunctionLayer, alice: str, in_thread: Any
) -> None:
    """The decision forms are plain HTML forms: they work with JavaScript switched off."""
    ran: list[str] = []

    @agent.require_approval()
    def lookup_customer(email: str) -> str:
        ran.append(email)
        return "record"

    result = in_thread(lookup_customer, email="jo@example.com")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, server.base_url, alice, PASSWORD)
        row = page.locator("tr.request-row", has_text="lookup_customer")
        for _ in range(50):  # without JS the list does not refresh itself: reload until it shows
            if row.count():
                break
            page.wait_for_timeout(100)
            page.reload()
        open_request(page, "lookup_customer")
        page.click("#respond-section summary")
        page.fill("#response", "Jo is a long-time customer, no need to look her up.")
        page.click("#respond")
        page.wait_for_selector("#outcome")
        assert "answered instead" in page.locator("#outcome").inner_text().lower()
    finally:
        context.close()

    assert (
        result.result(timeout=AGENT_WAIT) == "Jo is a long-time customer, no need to look her up."
    )
    assert ran == []


def test_human_contact_answer(
    server: Any, page: Any, login: Any, agent: FunctionLayer, alice: str, in_thread: Any
) -> None:
    ask = agent.human_as_tool(
        response_options=[
            ResponseOption(name="eu", title="EU region", prompt_fill="Deploy to eu-west-1."),
            ResponseOption(name="us", title="US region"),
        ]
    )
    login(page, server.base_url, alice, PASSWORD)
    result = in_thread(ask, "Which region should the new cluster go to?")
    page.locator("tr.request-row", has_text="Which region").locator("a.title").click()
    assert "Which region should the new cluster go to?" in page.locator("#message").inner_text()

    page.fill("#answer", "EU, and keep the data there.")
    page.click("button.option-button:has-text('EU region')")
    page.wait_for_selector("#outcome")

    assert result.result(timeout=AGENT_WAIT) == "EU, and keep the data there."
    assert "alice" in page.locator("#outcome").inner_text()


XSS_SCRIPT = "<script>alert('xss-script')</script>"
XSS_IMG = "<img src=x onerror=alert('xss-img')>"


def test_llm_payloads_render_as_text(
    server: Any, page: Any, login: Any, dialogs: Any, alice: str, tmp_path: Path
) -> None:
    login(page, server.base_url, alice, PASSWORD)
    headers = {"Authorization": f"Bearer {server.token}"}
    call = {
        "run_id": XSS_IMG,
        "call_id": "xss-call",
        "spec": {
            "fn": "post_comment",
            "kwargs": {"body": XSS_SCRIPT, "title": XSS_IMG, "nested": {"k": "</pre>" + XSS_IMG}},
            "description": XSS_SCRIPT,
        },
    }
    contact = {
        "run_id": "r",
        "call_id": "xss-contact",
        "spec": {"msg": XSS_IMG, "subject": XSS_SCRIPT},
    }
    with httpx.Client(base_url=server.api_base, headers=headers, timeout=10) as client:
        assert client.post("/function_calls", json=call).status_code in (200, 201)
        assert client.post("/contact_requests", json=contact).status_code in (200, 201)

    # The rows arrive through the live update (innerHTML of the server's escaped fragment).
    page.locator("tr.request-row", has_text="post_comment").wait_for()
    page.locator("tr.request-row", has_text="onerror").first.wait_for()
    list_text = page.locator("#pending-table").inner_text()
    assert XSS_SCRIPT in list_text or "alert('xss-script')" in list_text
    assert page.locator("#pending-table img, #pending-table script").count() == 0

    open_request(page, "post_comment")
    kwargs = shown_arguments(page)
    assert kwargs["body"] == XSS_SCRIPT
    assert kwargs["title"] == XSS_IMG
    assert json.loads(kwargs["nested"]) == {"k": "</pre>" + XSS_IMG}
    assert page.locator("#docstring").inner_text() == XSS_SCRIPT
    assert XSS_IMG in page.locator("#edited-kwargs").input_value()
    assert page.locator("main img, main script").count() == 0
    page.screenshot(path=str(tmp_path / "xss-detail.png"), full_page=True)

    page.goto(f"{server.base_url}/inbox/contacts/xss-contact")
    assert page.locator("#message").inner_text() == XSS_IMG
    assert XSS_SCRIPT in page.locator("h1").inner_text()
    assert page.locator("main img, main script").count() == 0
    page.screenshot(path=str(tmp_path / "xss-contact.png"), full_page=True)
    page.wait_for_timeout(200)  # give any injected handler (onerror) time to fire
    assert dialogs.messages == []


def test_open_detail_page_notices_a_decision_made_elsewhere(
    server: Any, page: Any, login: Any, alice: str
) -> None:
    call = {"run_id": "r", "call_id": "elsewhere-1", "spec": {"fn": "decided_elsewhere"}}
    with httpx.Client(base_url=server.api_base, headers=server.headers(), timeout=10) as client:
        assert client.post("/function_calls", json=call).status_code in (200, 201)
        login(page, server.base_url, alice, PASSWORD)
        open_request(page, "decided_elsewhere")
        banner = page.locator("#changed-elsewhere")
        assert banner.is_hidden()
        page.wait_for_timeout(300)  # let the page's watcher start its long-poll
        # Decided elsewhere: by another person, through an approver token (agent tokens
        # cannot decide).
        with server.approver_client() as human:
            decided = human.post(
                "/agent/function_calls/elsewhere-1/respond",
                json={"approved": False, "comment": "no"},
            )
        assert decided.status_code == 200, decided.text
    # The page updates itself: no reload, the decision and who made it appear in place.
    page.locator("#outcome").wait_for()
    assert "rejected" in page.locator("#outcome").inner_text().lower()
    assert page.locator("#decide").count() == 0
