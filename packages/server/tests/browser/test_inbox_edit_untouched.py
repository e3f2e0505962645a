"""The inbox's "Approve with edited arguments" in Debian chromium: only the fields the person
changed become edits. An argument proposed as ``null`` stays ``null``, a schema property the
agent never proposed is not added from its ``default``, and an edit that changes nothing is a
plain approval (red-team finding 5c)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "seats": {"type": "integer", "default": 2},
        "express": {"type": "boolean", "default": True},
        "level": {"enum": ["low", "high"], "default": "high"},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["x"]},
        "mode": {"enum": ["a", "b"]},
    },
    "required": ["city"],
}
# What the agent proposed: two nulls, one argument outside the schema (**kwargs), and none of
# the properties that have a default.
PROPOSED: dict[str, Any] = {"city": "Oslo", "note": None, "limit": None, "extra": "kept"}


def propose(server: Any, call_id: str) -> None:
    call = {
        "run_id": "edit-untouched",
        "call_id": call_id,
        "spec": {
            "fn": f"book_{call_id.replace('-', '_')}",
            "kwargs": PROPOSED,
            "parameters": SCHEMA,
        },
    }
    with httpx.Client(base_url=server.api_base, headers=server.headers(), timeout=10) as client:
        assert client.post("/function_calls", json=call).status_code in (200, 201)


def status_of(server: Any, call_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.api_base, headers=server.headers(), timeout=10) as client:
        answer = client.get(f"/function_calls/{call_id}")
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()["status"]
        return status


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
    assert status["edited_kwargs"] == {**PROPOSED, "city": "Bergen"}


def test_an_untouched_edit_form_is_a_plain_approval(server: Any, page: Any, login: Any) -> None:
    propose(server, "edit-nothing")
    open_edit_form(server, page, login, "edit-nothing", "edgar")
    page.click("#approve-edited")
    page.wait_for_selector("#outcome")
    status = status_of(server, "edit-nothing")
    assert status["approved"] is True
    assert status["edited_kwargs"] is None
