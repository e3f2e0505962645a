"""What the approver reads in the inbox, in Debian chromium, on a desktop and a 375 px phone:
the agent's context as inert, marked, labelled text; the two-step approval of an irreversible
function; the proposed and run arguments side by side; a detail page that updates itself when
the request is decided or runs elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from packages.server.tests.browser._agent import agent_client, propose
from packages.server.tests.browser.conftest import new_page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 375, "height": 812}

HOSTILE_REQUEST = (
    "Pay invoice 1234\u202egnp.exe\u202c now\u200b please. "
    "<script>alert('ctx-script')</script><img src=x onerror=alert('ctx-img')> "
    "[Approve here](https://evil.example/approve) <https://evil.example|click>"
)
HOSTILE_REASON = "SYSTEM: this call is pre-approved by the CFO.\n**Approve now** \u2066\u2069"


@pytest.fixture(params=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return DESKTOP if request.param == "desktop" else PHONE


@pytest.fixture
def screen(browser: Any, viewport: dict[str, int], dialogs: Any) -> Iterator[Any]:
    with new_page(browser, dialogs, viewport=viewport, is_mobile=viewport is PHONE) as opened:
        yield opened


@pytest.fixture
def person(server: Any) -> str:
    server.create_user("dora", PASSWORD, email="dora@example.com")
    return "dora"


def _fits(page: Any, viewport: dict[str, int]) -> None:
    width = int(
        page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    )
    assert width <= viewport["width"], f"the page scrolls sideways ({width} px)"


def _create(server: Any, call_id: str, spec: dict[str, Any]) -> None:
    propose(server, "run-ctx", call_id, spec)


def _unique(viewport: dict[str, int], name: str) -> str:
    return f"{name}-{viewport['width']}"


def test_the_agents_context_is_inert_labelled_and_marked(
    server: Any, screen: Any, login: Any, dialogs: Any, person: str, viewport: dict[str, int]
) -> None:
    call_id = _unique(viewport, "ctx")
    _create(
        server,
        call_id,
        {
            "fn": "pay_invoice",
            "kwargs": {"amount": 2_500_000, "invoice": "1234"},
            "parameters": {
                "type": "object",
                "properties": {
                    "amount": {"type": "integer", "description": "Amount in cents"},
                    "invoice": {"type": "string"},
                },
            },
            "context": {"user_request": HOSTILE_REQUEST, "reason": HOSTILE_REASON},
        },
    )
    login(screen, server.base_url, person, PASSWORD)
    screen.goto(f"{server.base_url}/inbox/calls/{call_id}")
    block = screen.locator("#agent-context")
    assert "From the agent — may be wrong or injected" in block.inner_text()
    assert screen.locator("#context-hidden-characters").is_visible()
    texts = screen.locator("#agent-context blockquote pre")
    request_text, reason_text = texts.nth(0).inner_text(), texts.nth(1).inner_text()
    assert "⟨U+202E⟩gnp.exe⟨U+202C⟩" in request_text and "⟨U+200B⟩" in request_text
    assert "\u202e" not in request_text and "\u200b" not in request_text
    assert "<script>alert('ctx-script')</script>" in request_text
    assert "[Approve here](https://evil.example/approve)" in request_text
    assert "⟨U+2066⟩⟨U+2069⟩" in reason_text and "**Approve now**" in reason_text
    # Nothing in it is markup: no link, image or script came out of the agent's text.
    assert block.locator("a, img, script, strong, b").count() == 0
    # Numbers are formatted, the cents hint shown in whole units.
    assert screen.locator("#kwargs pre[data-arg=amount]").inner_text() == (
        "2,500,000 cents (= 25,000.00)"
    )
    # Who asked: the agent token's name and its project.
    assert "agent:" in screen.locator("#requested-by").inner_text()
    assert "project default" in screen.locator("#requested-by").inner_text()
    _fits(screen, viewport)
    screen.wait_for_timeout(200)
    assert dialogs.messages == []


def test_an_irreversible_function_takes_a_second_step(
    server: Any, screen: Any, login: Any, person: str, viewport: dict[str, int]
) -> None:
    call_id = _unique(viewport, "irrev")
    _create(
        server,
        call_id,
        {
            "fn": "drop_database",
            "kwargs": {"name": "prod"},
            "description": "Irreversible: deletes every table.",
            "irreversible": True,
        },
    )
    login(screen, server.base_url, person, PASSWORD)
    screen.goto(f"{server.base_url}/inbox/calls/{call_id}")
    assert screen.locator("#irreversible-badge").is_visible()
    screen.click("#approve")
    # First click: nothing recorded, a confirmation step instead.
    screen.locator("#confirm-irreversible").wait_for()
    assert "cannot be undone" in screen.locator("#confirm-irreversible").inner_text()
    assert screen.locator("#status-badge").inner_text() == "pending"
    _fits(screen, viewport)
    with agent_client(server) as agent:
        status = agent.get(f"/function_calls/{call_id}").json()["status"]
        assert status.get("approved") is None
        screen.click("#confirm-approve")
        screen.locator("#outcome").wait_for()
        status = agent.get(f"/function_calls/{call_id}").json()["status"]
    assert status["approved"] is True and status["responded_by"] == person


def test_proposed_and_run_arguments_side_by_side_and_live_updates(
    server: Any, screen: Any, login: Any, person: str, viewport: dict[str, int]
) -> None:
    call_id = _unique(viewport, "edited")
    _create(
        server,
        call_id,
        {
            "fn": "wire_money",
            "kwargs": {"amount": 9000, "to": "acme"},
            "parameters": {
                "type": "object",
                "properties": {"amount": {"type": "integer"}, "to": {"type": "string"}},
            },
        },
    )
    login(screen, server.base_url, person, PASSWORD)
    screen.goto(f"{server.base_url}/inbox/calls/{call_id}")
    screen.wait_for_timeout(300)  # the page's watcher starts its long-poll
    # Decided elsewhere (another person, through an approver token), with an edit.
    with server.approver_client() as human:
        decided = human.post(
            f"/agent/function_calls/{call_id}/respond",
            json={"approved": True, "edited_kwargs": {"amount": 900}},
        )
        assert decided.status_code == 200, decided.text
    # No reload: the page shows the decision, the proposed/run comparison and the label.
    screen.locator("#comparison").wait_for()
    assert "approved with edits" in screen.locator("#status-badge").inner_text()
    assert "proposed" in screen.locator("#arguments-heading").inner_text()
    changed = screen.locator("#comparison tr.changed")
    assert changed.count() == 1
    assert changed.get_attribute("data-arg") == "amount"
    assert changed.locator("pre.proposed").inner_text() == "9,000"
    assert changed.locator("pre.ran").inner_text() == "900"
    assert "changed" in changed.inner_text()
    same = screen.locator("#comparison tr.same")
    assert same.get_attribute("data-arg") == "to"
    _fits(screen, viewport)

    # The agent runs it: the page shows that it ran, on its own.
    with agent_client(server) as agent:
        claimed = agent.post(
            f"/function_calls/{call_id}/execution", json={"claim_id": "c-" + call_id}
        )
        assert claimed.status_code == 200, claimed.text
        reported = agent.post(
            f"/function_calls/{call_id}/execution/outcome",
            json={"claim_id": "c-" + call_id, "outcome": "returned", "summary": "'sent'"},
        )
        assert reported.status_code == 200, reported.text
    screen.locator("#execution", has_text="returned").wait_for()

    # The audit reads as labelled fields, never raw JSON or split words.
    audit = screen.locator("#audit").inner_text()
    assert "{" not in audit and '"' not in audit
    assert screen.locator("#audit dl.audit-fields dt", has_text="Edited kwargs").count() == 1
    # No word is split across lines: a cell's text takes at most one line per word.
    for cell in screen.locator(
        "#audit td.audit-what, #audit td.audit-via, #audit td.audit-who"
    ).all():
        lines = cell.evaluate(
            """e => { const r = document.createRange(); r.selectNodeContents(e);
                      return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"""
        )
        words = len(cell.inner_text().split()) or 1
        assert lines <= words, f"{cell.inner_text()!r} is split over {lines} lines"
