"""The review page of a model turn in Debian chromium: three calls of one group on one page,
each with its arguments in full; in one visit the person approves two and rejects one (with
feedback); each call is decided on its own."""

from __future__ import annotations

from typing import Any

import pytest

from packages.server.tests.browser import _agent as agent
from packages.server.tests.browser._agent import status_of

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
GROUP = "browser-turn-1"


def propose(server: Any, call_id: str, kwargs: dict[str, Any]) -> None:
    spec = {"fn": "pay_invoice", "kwargs": kwargs, "group_id": GROUP}
    agent.propose(server, "group-browser", call_id, spec)


def test_approve_two_reject_one_in_one_visit(server: Any, page: Any, login: Any) -> None:
    ids = ["grp-b-1", "grp-b-2", "grp-b-3"]
    memo = "line one\nline two " + "z" * 3000 + " TAIL"
    propose(server, ids[0], {"invoice": "INV-1", "amount": 10})
    propose(server, ids[1], {"invoice": "INV-2", "amount": 20, "memo": memo})
    propose(server, ids[2], {"invoice": "INV-3", "amount": 30})
    server.create_user("gina", PASSWORD)
    login(page, server.base_url, "gina", PASSWORD)

    # From one call's page to its group.
    page.goto(f"{server.base_url}/inbox/calls/{ids[1]}")
    page.click("#group-link a")
    page.wait_for_selector("#group-form")
    cards = page.locator("section.group-call")
    assert cards.count() == 3
    texts = [cards.nth(i).locator("pre.arguments").inner_text() for i in range(3)]
    assert "INV-1" in texts[0] and "INV-3" in texts[2]
    assert texts[1].rstrip().endswith("TAIL")  # the long argument in full

    card = {cid: page.locator(f'section.group-call[data-call-id="{cid}"]') for cid in ids}
    card[ids[0]].locator("input.approve").check()
    card[ids[1]].locator("input.reject").check()
    card[ids[1]].locator("textarea.feedback").fill("wrong amount")
    card[ids[2]].locator("input.approve").check()
    page.click("#submit-decisions")
    page.wait_for_selector("#results")
    assert page.locator("#results li").count() == 3

    first, second, third = (status_of(server, cid) for cid in ids)
    assert first["approved"] is True and third["approved"] is True
    assert second["approved"] is False and second["comment"] == "wrong amount"
    assert {first["responded_by"], second["responded_by"], third["responded_by"]} == {"gina"}
    # Decided: nothing left to decide on the page.
    assert page.locator("#approve-all").count() == 0
    assert [cards.nth(i).locator(".status").inner_text() for i in range(3)] == [
        "approved",
        "rejected",
        "approved",
    ]
