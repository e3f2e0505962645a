"""The inbox edit form generated from the schema, and faithful display of arguments in every
server channel (inbox HTML, Slack blocks, email text): signature order, real line breaks,
invisible and direction-changing characters made visible, with a warning."""

from __future__ import annotations

import html
import json
import re
from enum import Enum
from typing import Annotated, Any

from functionlayer import FunctionCall, FunctionCallSpec, tool_spec
from functionlayer_server._channels._email_render import render_request
from functionlayer_server._channels._slack_blocks import ACTION_APPROVE, request_blocks
from pydantic import Field

from packages.server.tests.test_inbox import Inbox
from packages.server.tests.test_inbox import inbox as inbox

WARNING = "⚠ This request contains invisible or direction-changing characters"


class Speed(Enum):
    SLOW = "slow"
    FAST = "fast"


def ship(
    recipient: str,
    note: str,
    quantity: Annotated[int, Field(ge=1)],
    price: float,
    express: bool,
    speed: Speed,
    tags: list[str],
) -> None:
    """Ship goods to a customer."""


SCHEMA = tool_spec(ship).parameters
PROPOSED: dict[str, Any] = {
    "recipient": "zed@example.com",
    "note": "line one\nline two",
    "quantity": 2,
    "price": 9.5,
    "express": False,
    "speed": "slow",
    "tags": ["a"],
}


def add_ship(box: Inbox, call_id: str, **extra: Any) -> FunctionCall:
    return box.add_call(
        call_id,
        fn="ship",
        kwargs=dict(PROPOSED),
        parameters=SCHEMA,
        description="Ship goods to a customer.",
        **extra,
    )


def field_html(page: str, name: str) -> str:
    match = re.search(rf'<div class="field[^"]*" id="arg-{name}-field">(.*?)</div>', page, re.S)
    assert match, f"no field for {name}"
    return match.group(1)


def test_the_edit_form_has_a_typed_field_per_parameter_in_signature_order(inbox: Inbox) -> None:
    add_ship(inbox, "form-1")
    inbox.login()
    page = inbox.client.get("/inbox/calls/form-1").text
    order = [page.index(f'id="arg-{name}-field"') for name in SCHEMA["properties"]]
    assert order == sorted(order)
    assert 'type="text" name="arg.recipient"' in field_html(page, "recipient")
    assert "<textarea" in field_html(page, "note")  # a string with line breaks
    assert 'type="number" step="1"' in field_html(page, "quantity")
    assert 'type="number" step="any"' in field_html(page, "price")
    assert 'type="checkbox"' in field_html(page, "express")
    speed = field_html(page, "speed")
    assert "<select" in speed and ">fast</option>" in speed
    assert "(JSON)" in field_html(page, "tags")
    assert 'id="edited-kwargs"' not in page  # raw JSON only without a schema


def edit_form(csrf: str, **changes: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "action": "edit",
        "arg.recipient": "zed@example.com",
        "arg.note": "line one\r\nline two",
        "arg.quantity": "2",
        "arg.price": "9.5",
        "arg.speed": "0",
        "arg.tags": '["a"]',
    }
    data.update(changes)
    return data


def test_invalid_typed_edits_are_refused_next_to_the_field(inbox: Inbox) -> None:
    add_ship(inbox, "form-2")
    csrf = inbox.login()
    for changes, name, why in [
        ({"arg.quantity": "abc"}, "quantity", "must be a number"),
        ({"arg.quantity": "0"}, "quantity", "minimum of 1"),
        ({"arg.quantity": "2.5"}, "quantity", "is not of type"),
        ({"arg.tags": '{"not": "a list"}'}, "tags", "is not of type"),
    ]:
        answer = inbox.client.post("/inbox/calls/form-2", data=edit_form(csrf, **changes))
        assert answer.status_code == 422, (changes, answer.text[:300])
        error = re.search(rf'id="arg-{name}-error">(.*?)</p>', answer.text, re.S)
        assert error and why in html.unescape(error.group(1)), (changes, error)
        status = inbox.call("form-2").status
        assert status is not None and status.approved is None and status.edited_kwargs is None


def test_a_valid_typed_edit_is_approved_with_typed_values(inbox: Inbox) -> None:
    add_ship(inbox, "form-3")
    csrf = inbox.login()
    answer = inbox.client.post(
        "/inbox/calls/form-3",
        data=edit_form(csrf, **{"arg.quantity": "5", "arg.express": "true", "arg.speed": "1"}),
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:500]
    status = inbox.call("form-3").status
    assert status is not None and status.approved is True
    assert status.edited_kwargs == {**PROPOSED, "quantity": 5, "express": True, "speed": "fast"}
    assert list(status.edited_kwargs) == list(PROPOSED)


def test_an_unchanged_typed_form_is_a_plain_approval(inbox: Inbox) -> None:
    add_ship(inbox, "form-4")
    csrf = inbox.login()
    inbox.client.post("/inbox/calls/form-4", data=edit_form(csrf), follow_redirects=False)
    status = inbox.call("form-4").status
    assert status is not None and status.approved is True and status.edited_kwargs is None


def test_decisions_the_function_does_not_accept_are_not_offered_nor_accepted(
    inbox: Inbox,
) -> None:
    add_ship(inbox, "form-5", allowed_decisions=["approve", "reject"])
    csrf = inbox.login()
    page = inbox.client.get("/inbox/calls/form-5").text
    assert 'id="approve-form"' in page and 'id="reject-form"' in page
    assert 'id="edit-section"' not in page and 'id="respond-section"' not in page
    for data in (
        edit_form(csrf, **{"arg.quantity": "7"}),
        {"csrf_token": csrf, "action": "respond", "response": "no need"},
    ):
        answer = inbox.client.post("/inbox/calls/form-5", data=data)
        assert answer.status_code == 422
        assert "does not accept the decision" in html.unescape(answer.text)
    status = inbox.call("form-5").status
    assert status is not None and status.approved is None


HOSTILE: dict[str, Any] = {
    "recipient": "zed@example.com",
    "body": "Dear Zed,\nplease find attached.",
    "attachment": "invoice_\u202efdp.sh",
    "site": "p\u0430ypal.com",
    "hidden": "a\u200bb",
}


def hostile_call(call_id: str = "show-1", **extra: Any) -> FunctionCall:
    def send_file(recipient: str, body: str, attachment: str, site: str, hidden: str) -> None:
        """Send a file."""

    return FunctionCall(
        run_id="r",
        call_id=call_id,
        spec=FunctionCallSpec(
            fn="send_file",
            # Sent in alphabetical order: the display must follow the schema (signature) order.
            kwargs=dict(sorted(HOSTILE.items())),
            parameters=tool_spec(send_file).parameters,
            **extra,
        ),
    )


def check_text(text: str) -> None:
    assert WARNING in text
    positions = [text.index(name + ":") for name in HOSTILE]
    assert positions == sorted(positions), "not in signature order"
    assert "invoice_⟨U+202E⟩fdp.sh" in text and "\u202e" not in text
    assert "p⟨U+0430⟩ypal.com" in text and "a⟨U+200B⟩b" in text
    assert "Dear Zed," in text and "\\n" not in text
    assert re.search(r"Dear Zed,\n\s*please find attached\.", text)


def test_inbox_html_shows_arguments_faithfully(inbox: Inbox) -> None:
    call = hostile_call()
    inbox.run(inbox.service.create_function_call, call)
    inbox.login()
    page = inbox.client.get("/inbox/calls/show-1").text
    assert 'id="hidden-characters"' in page and WARNING in page
    values = dict(
        re.findall(r'<pre class="arg-value[^"]*" data-arg="([^"]+)">(.*?)</pre>', page, re.S)
    )
    assert list(values) == list(HOSTILE)
    assert html.unescape(values["attachment"]) == "invoice_⟨U+202E⟩fdp.sh"
    assert html.unescape(values["body"]) == "Dear Zed,\nplease find attached."
    assert "\u202e" not in page.split('id="kwargs"')[1].split("</dl>")[0]


def test_slack_blocks_show_arguments_faithfully() -> None:
    blocks = request_blocks(hostile_call(), context=None, base_url="https://fl.example")
    text = json.loads(json.dumps(blocks))
    arguments = next(b["text"]["text"] for b in text if "*Arguments*" in str(b.get("text", "")))
    check_text(arguments)


def approve_buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == ACTION_APPROVE
    ]


def test_slack_offers_no_approve_button_when_arguments_do_not_fit() -> None:
    call = FunctionCall(
        run_id="r",
        call_id="huge",
        spec=FunctionCallSpec(fn="send", kwargs={"body": "x" * 5000, "to": "eve@evil.example"}),
    )
    blocks = request_blocks(call, context=None, base_url="https://fl.example")
    assert approve_buttons(blocks) == []
    dump = json.dumps(blocks)
    assert "too long to show here in full" in dump
    assert "https://fl.example/inbox/calls/huge" in dump
    assert any(
        e.get("action_id") == "fl_reject"
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    )
    small = FunctionCall(
        run_id="r", call_id="small", spec=FunctionCallSpec(fn="send", kwargs={"to": "bob"})
    )
    assert len(approve_buttons(request_blocks(small, context=None, base_url="https://x"))) == 1


def test_slack_does_not_offer_decisions_the_function_refuses() -> None:
    call = hostile_call("only-reject", allowed_decisions=["reject"])
    blocks = request_blocks(call, context=None, base_url="https://fl.example")
    assert approve_buttons(blocks) == []


def test_email_text_and_html_show_arguments_faithfully() -> None:
    content = render_request(
        hostile_call(),
        subject=None,
        context=None,
        approve_url="https://fl.example/approve",
        open_url="https://fl.example/open",
        expires="soon",
    )
    check_text(content.text)
    check_text(html.unescape(content.html))
    no_approve = render_request(
        hostile_call("e2", allowed_decisions=["reject"]),
        subject=None,
        context=None,
        approve_url=None,
        open_url="https://fl.example/open",
        expires="soon",
    )
    assert "Approve:" not in no_approve.text
