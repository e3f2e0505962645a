"""The inbox's "Approve with edited arguments" in Debian chromium: only the fields the person
changed become edits. An argument proposed as ``null`` stays ``null``, a schema property the
agent never proposed is not added from its ``default``, and an edit that changes nothing is a
plain approval (red-team finding 5c)."""

from __future__ import annotations

from typing import Any

import pytest

from packages.server.tests._edit_form import EDIT_PROPOSED, EDIT_SCHEMA
from packages.server.tests.browser import _agent as agent
from packages.server.tests.browser._agent import status_of

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


def propose(server: Any, call_id: str) -> None:
    spec = {
        "fn": f"book_{call_id.replace('-', '_')}",
        "kwargs": EDIT_PROPOSED,
        "parameters": EDIT_SCHEMA,
    }
    agent.propose(server, "edit-untouched", call_id, spec)


def open_edit_form(server: Any, page: Any, login: Any, call_id: str, user: str) -> None:
    server.create_user(user, PASSWORD)
    login(page, server.base_url, user, PASSWORD)
    page.goto(f"{server.base_url}/inbox/calls/{call_id}")
    page.click("#edit-section summary")
    page.wait_for_selector("#arg-city")


def test_only_the_changed_field_is_an_edit(server: Any, page: Any, login: Any) -> None:
    propose(server, "edit-one-field")
    open_edit_form(server, page, login, "edit-one-field", "edna")
    # Every argument is on the page, including the one the schema does not list.
    assert page.locator('#kwargs pre.arg-value[data-arg="extra"]').inner_text() == "kept"
    page.fill("#arg-city", "Bergen")
    page.click("#approve-edited")
    page.wait_for_selector("#outcome")
    status = status_of(server, "edit-one-field")
    assert status["approved"] is True
    assert status["edited_kwargs"] == {**EDIT_PROPOSED, "city": "Bergen"}


def test_an_untouched_edit_form_is_a_plain_approval(server: Any, page: Any, login: Any) -> None:
    propose(server, "edit-nothing")
    open_edit_form(server, page, login, "edit-nothing", "edgar")
    page.click("#approve-edited")
    page.wait_for_selector("#outcome")
    status = status_of(server, "edit-nothing")
    assert status["approved"] is True
    assert status["edited_kwargs"] is None
