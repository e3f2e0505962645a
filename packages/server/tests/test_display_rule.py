"""One display rule in every channel (red-team finding 5, slip 16): what a person approves is
what they could read.

- Every invisible character is marked in every channel (Slack, Discord, email, inbox,
  terminal), with the warning line.
- Every argument is shown, including those the schema does not list (``**kwargs``).
- A channel that cannot show every argument in full offers no Approve (Slack, Discord, email);
  the inbox and the terminal show everything, so they can.
- The inbox's "Approve with edited arguments" records only the fields the person changed.

The inbox runs on SQLite and on PostgreSQL; the other channels' messages are built by their
real rendering code (their delivery and clicks are tested end to end beside each channel)."""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from functionlayer import FunctionCall, FunctionCallSpec, FunctionLayer, TerminalBackend
from functionlayer._display import TRUNCATED, WARNING, make_visible
from functionlayer_server._app import create_app
from functionlayer_server._channels import _discord_messages as discord
from functionlayer_server._channels._email_render import render_request
from functionlayer_server._channels._slack_blocks import ACTION_APPROVE, request_blocks
from functionlayer_server._settings import Settings

from packages.server.tests import _edit_form
from packages.server.tests._edit_form import with_body
from packages.server.tests.test_inbox import PASSWORD, Inbox
from tests._support.servers import fresh_postgres_database

# The characters the red-team report found unmarked, and a few from the categories marked
# before (a bidi override, a zero-width space).
INVISIBLE = [
    *range(0xFE00, 0xFE10),
    0xE0100,
    0xE0150,
    0xE01EF,
    0x034F,
    *range(0x180B, 0x1810),
    0x17B4,
    0x17B5,
    0x115F,
    0x1160,
    0x3164,
    0xFFA0,
    0x2800,
    0x202E,
    0x200B,
]
IDS = [f"U+{c:04X}" for c in INVISIBLE]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"to": {"type": "string"}, "amount": {"type": "integer"}},
}


def call_with(kwargs: dict[str, Any], call_id: str = "c1", **spec: Any) -> FunctionCall:
    return FunctionCall(
        run_id="r", call_id=call_id, spec=FunctionCallSpec(fn="send", kwargs=kwargs, **spec)
    )


def hidden_call(code: int) -> FunctionCall:
    # In a word, between words and alone: the markers must appear wherever it hides.
    return call_with({"to": f"bob{chr(code)}@example.com", "note": f"a {chr(code)} b"})


def check_marked(text: str, code: int) -> None:
    assert WARNING in text
    assert chr(code) not in text
    assert f"bob⟨U+{code:04X}⟩@example.com" in text
    assert f"a ⟨U+{code:04X}⟩ b" in text


# Arguments in the agent's order: "extra" (not a schema property) before the properties.
EXTRAS = {"extra": "kwarg-value", "amount": 5, "to": "bob", "more": [1, 2]}
EXTRAS_ORDER = ["to", "amount", "extra", "more"]


def check_order(text: str) -> None:
    positions = [text.index(f"{name}:") for name in EXTRAS_ORDER]
    assert positions == sorted(positions), text


LONG = {"to": "eve@evil.example", "body": "x" * 4000}
EMAIL_ROOM = 50_000  # characters of arguments an email shows at most
HUGE = {"to": "eve@evil.example", "body": "x" * (EMAIL_ROOM + 10)}


# -- Slack -------------------------------------------------------------------------------------


def slack_arguments(call: FunctionCall) -> str:
    blocks = request_blocks(call, context=None, base_url="https://fl.example")
    return next(b["text"]["text"] for b in blocks if "*Arguments*" in str(b.get("text", "")))


def slack_approves(call: FunctionCall) -> bool:
    blocks = request_blocks(call, context=None, base_url="https://fl.example")
    return any(
        e.get("action_id") == ACTION_APPROVE
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    )


@pytest.mark.parametrize("code", INVISIBLE, ids=IDS)
def test_slack_marks_every_invisible_character(code: int) -> None:
    check_marked(html.unescape(slack_arguments(hidden_call(code))), code)


def test_slack_shows_arguments_outside_the_schema_and_long_ones_get_no_approve() -> None:
    check_order(slack_arguments(call_with(EXTRAS, parameters=SCHEMA)))
    assert slack_approves(call_with({"to": "bob"}))
    assert not slack_approves(call_with(LONG))
    assert TRUNCATED in slack_arguments(call_with(LONG))
    # Markers make a message longer: 400 hidden characters take 4,000 characters to show.
    assert not slack_approves(call_with({"to": "\u200b" * 400}))


# -- Discord -----------------------------------------------------------------------------------


def discord_message(call: FunctionCall, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("context", None)
    return discord.request_message(call, base_url="https://fl.example", **kwargs)


def discord_labels(message: dict[str, Any]) -> list[str]:
    return [b["label"] for row in message["components"] for b in row["components"]]


@pytest.mark.parametrize("code", INVISIBLE, ids=IDS)
def test_discord_marks_every_invisible_character(code: int) -> None:
    content = discord_message(hidden_call(code))["content"]
    # Discord's own escaping puts a zero-width space after "@" and "`" (no mentions, no
    # closing the code block); every other one is the agent's and must be marked.
    check_marked(content.replace("@\u200b", "@").replace("`\u200b", "`"), code)


def test_discord_shows_arguments_in_signature_order_including_extras() -> None:
    content = discord_message(call_with(EXTRAS, parameters=SCHEMA))["content"]
    check_order(content)
    assert "kwarg-value" in content


def test_discord_offers_no_approve_when_arguments_do_not_fit() -> None:
    assert "Approve" in discord_labels(discord_message(call_with({"to": "bob"})))
    for kwargs in (LONG, {"to": "\u200b" * 150}, {"to": "@" * 700}):
        message = discord_message(call_with(kwargs))
        labels = discord_labels(message)
        assert "Approve" not in labels and "Reject…" in labels and "Open in inbox" in labels
        assert "too long to show here in full" in message["content"]
        assert TRUNCATED in message["content"]
        assert len(message["content"]) <= discord.CONTENT_LIMIT


def test_discord_never_cuts_arguments_it_offers_to_approve() -> None:
    # Every other part of the message at its longest: the arguments block still fits whole.
    kwargs = {"body": "y" * 1100}
    call = call_with(
        kwargs, description="@" * 5000, call_id="c" * 256, reject_options=None
    ).model_copy(update={"run_id": "`" * 256})
    call.spec.fn = "f" * 200
    message = discord_message(call, context="*" * 500, progress="#" * 500)
    assert "Approve" in discord_labels(message)
    assert len(message["content"]) <= discord.CONTENT_LIMIT
    assert "y" * 1100 + "\n```" in message["content"]


def test_discord_offers_only_the_decisions_the_function_accepts() -> None:
    labels = discord_labels(discord_message(call_with({"to": "bob"}, allowed_decisions=["reject"])))
    assert "Approve" not in labels and "Reject…" in labels


# -- email -------------------------------------------------------------------------------------


def email_parts(call: FunctionCall) -> tuple[str, str]:
    content = render_request(
        call,
        subject=None,
        context=None,
        approve_url="https://fl.example/approve",
        open_url="https://fl.example/open",
        expires="soon",
    )
    return content.text, html.unescape(content.html)


@pytest.mark.parametrize("code", INVISIBLE, ids=IDS)
def test_email_marks_every_invisible_character(code: int) -> None:
    for part in email_parts(hidden_call(code)):
        check_marked(part, code)


def test_email_shows_extras_and_too_long_arguments_say_the_email_cannot_approve() -> None:
    for part in email_parts(call_with(EXTRAS, parameters=SCHEMA)):
        check_order(part)
    text, _ = email_parts(call_with(LONG))
    assert "x" * 4000 in text and "a first line of 'approve'" in text
    text, _ = email_parts(call_with(HUGE))
    assert TRUNCATED in text and "cannot approve" in text
    assert "a first line of 'approve'" not in text
    assert len(text) < EMAIL_ROOM + 2000


# -- terminal ----------------------------------------------------------------------------------


def terminal_prompt(kwargs: dict[str, Any]) -> str:
    """What the terminal shows for a call (answered "n", then no feedback)."""
    shown = io.StringIO()
    layer = FunctionLayer(backend=TerminalBackend(input=io.StringIO("n\n\n"), output=shown))

    @layer.require_approval()
    def send(**kwargs: Any) -> None:
        raise AssertionError("rejected calls never run")

    send(**kwargs)
    return shown.getvalue()


@pytest.mark.parametrize("code", INVISIBLE, ids=IDS)
def test_terminal_marks_every_invisible_character(code: int) -> None:
    check_marked(terminal_prompt(dict(hidden_call(code).spec.kwargs)), code)


def test_terminal_shows_long_arguments_in_full() -> None:
    prompt = terminal_prompt(HUGE)
    assert HUGE["body"] in prompt and TRUNCATED not in prompt
    assert "Approve? [y/N" in prompt


def test_terminal_shows_arguments_outside_the_signature() -> None:
    shown = io.StringIO()
    layer = FunctionLayer(backend=TerminalBackend(input=io.StringIO("n\n\n"), output=shown))

    @layer.require_approval()
    def send(to: str, amount: int, **rest: Any) -> None:
        raise AssertionError("rejected calls never run")

    send(extra="kwarg-value", amount=5, to="bob", more=[1, 2])
    check_order(shown.getvalue())


# -- inbox (SQLite and PostgreSQL) -------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    def serve(url: str) -> Iterator[Inbox]:
        with TestClient(create_app(Settings(database_url=url))) as client:
            box = Inbox(client, client.app.state.service)  # type: ignore[attr-defined]
            box.run(box.service.create_user, "alice", PASSWORD, email="alice@example.com")
            yield box

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path / 'inbox.sqlite3'}")
    else:
        with fresh_postgres_database() as url:
            yield from serve(url)


def inbox_arguments(box: Inbox, call_id: str) -> tuple[str, dict[str, str]]:
    page = box.client.get(f"/inbox/calls/{call_id}").text
    values = re.findall(r'<pre class="arg-value[^"]*" data-arg="([^"]+)">(.*?)</pre>', page, re.S)
    return page, {html.unescape(k): html.unescape(v) for k, v in values}


def test_inbox_marks_every_invisible_character(inbox: Inbox) -> None:
    kwargs = {f"arg{i}": f"bob{chr(code)}x a {chr(code)} b" for i, code in enumerate(INVISIBLE)}
    inbox.add_call("hidden", kwargs=kwargs)
    inbox.login()
    page, shown = inbox_arguments(inbox, "hidden")
    assert 'id="hidden-characters"' in page and WARNING in page
    for i, code in enumerate(INVISIBLE):
        assert shown[f"arg{i}"] == f"bob⟨U+{code:04X}⟩x a ⟨U+{code:04X}⟩ b", IDS[i]
    rows = inbox.client.get("/inbox").text  # the list's one-line summary too
    assert all(chr(code) not in rows for code in INVISIBLE)


def test_inbox_shows_every_argument_in_full_and_offers_approve(inbox: Inbox) -> None:
    inbox.add_call("extras", kwargs=EXTRAS, parameters=SCHEMA)
    inbox.add_call("long", kwargs=HUGE)
    inbox.login()
    _, shown = inbox_arguments(inbox, "extras")
    assert list(shown) == EXTRAS_ORDER
    page, shown = inbox_arguments(inbox, "long")
    assert shown["body"] == HUGE["body"] and 'id="approve-form"' in page


# The edit form's call, with a ``body`` that starts with a line break.
EDIT_SCHEMA = with_body(_edit_form.EDIT_SCHEMA)
EDIT_PROPOSED: dict[str, Any] = {
    **_edit_form.EDIT_PROPOSED,
    "body": "\nstarts with a line break",
}


class _EditForm(HTMLParser):
    """The fields of ``#edit-form`` as a browser submits them untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == "edit-form"
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first = a["name"], None
        elif tag == "option" and self._select is not None:
            if self._first is None:
                self._first = a.get("value", "")
            if "selected" in a:
                self.fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            self.fields.setdefault(self._select, self._first or "")
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            value = self.fields[self._textarea]
            self.fields[self._textarea] = value[1:] if value.startswith("\n") else value
            self._textarea = None
        elif tag == "form":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def untouched_form(box: Inbox, call_id: str) -> dict[str, str]:
    parser = _EditForm()
    parser.convert_charrefs = True
    parser.feed(box.client.get(f"/inbox/calls/{call_id}").text)
    assert parser.fields["action"] == "edit", parser.fields
    return {k: v.replace("\n", "\r\n") for k, v in parser.fields.items()}


def test_an_edit_records_only_the_fields_the_person_changed(inbox: Inbox) -> None:
    inbox.add_call("edit-1", kwargs=EDIT_PROPOSED, parameters=EDIT_SCHEMA)
    inbox.login()
    form = untouched_form(inbox, "edit-1")
    form["arg.city"] = "Bergen"
    answer = inbox.client.post("/inbox/calls/edit-1", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    status = inbox.call("edit-1").status
    assert status is not None and status.approved is True
    assert status.edited_kwargs == {**EDIT_PROPOSED, "city": "Bergen"}


def test_an_edit_that_changes_nothing_is_a_plain_approval(inbox: Inbox) -> None:
    inbox.add_call("edit-2", kwargs=EDIT_PROPOSED, parameters=EDIT_SCHEMA)
    inbox.login()
    answer = inbox.client.post(
        "/inbox/calls/edit-2", data=untouched_form(inbox, "edit-2"), follow_redirects=False
    )
    assert answer.status_code == 303, answer.text[:500]
    status = inbox.call("edit-2").status
    assert status is not None and status.approved is True and status.edited_kwargs is None


def test_fields_missing_from_the_form_are_not_edits(inbox: Inbox) -> None:
    inbox.add_call("edit-3", kwargs=EDIT_PROPOSED, parameters=EDIT_SCHEMA)
    csrf = inbox.login()
    data = {"csrf_token": csrf, "action": "edit", "arg.seats": "4", "arg.express": "true"}
    answer = inbox.client.post("/inbox/calls/edit-3", data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    status = inbox.call("edit-3").status
    assert status is not None
    # express is a checkbox: ticked here, so it is an edit (true, the default shown ticked, is
    # no change); seats changed from the default shown (2).
    assert status.edited_kwargs == {**EDIT_PROPOSED, "seats": 4}


# -- email links (SQLite and PostgreSQL) -------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_an_email_approve_link_cannot_approve_arguments_the_email_could_not_show(
    database: str, tmp_path: Path
) -> None:
    """The server never issues an Approve link for such a call; one signed with its key anyway
    (a link from before, a bug elsewhere) shows a page that cannot approve and decides nothing."""
    from aiosmtpd.controller import Controller
    from functionlayer_server._channels._email_links import LinkSigner

    from packages.server.tests.channels.test_email import Mailbox
    from tests._support.servers import free_port

    controller = Controller(Mailbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with contextlib.ExitStack() as stack:
            url = (
                stack.enter_context(fresh_postgres_database())
                if database == "postgres"
                else f"sqlite:///{tmp_path / 'email.sqlite3'}"
            )
            settings = Settings(
                database_url=url,
                public_url="http://testserver",
                secret_key="a-secret-key-for-the-email-link-test",
                smtp_host="127.0.0.1",
                smtp_port=controller.port,
                smtp_starttls=False,
                email_from="approvals@fl.example",
            )
            client = stack.enter_context(TestClient(create_app(settings)))
            box = Inbox(client, client.app.state.service)  # type: ignore[attr-defined]
            box.run(box.service.accounts.create_person, "alice", emails=["alice@example.com"])
            box.add_call(
                "huge",
                kwargs=HUGE,
                channel={"email": {"address": "alice@example.com"}},
            )
            token = LinkSigner(settings.secret_key or "").sign(
                kind="function_call",
                call_id="huge",
                action="approve",
                recipient="alice@example.com",
                expires_at=time.time() + 3600,
            )
            for method in ("GET", "POST"):
                page = client.request(method, f"/email/links/{token}")
                assert page.status_code == 422, page.text[:300]
                assert "cannot approve" in page.text and 'method="post"' not in page.text
            status = box.call("huge").status
            assert status is not None and status.approved is None
            refused = box.run(box.service.audit_trail, "huge")
            assert any(e.action == "answer_refused" for e in refused)
    finally:
        controller.stop()


# -- the docstring, and the inbox's edit form --------------------------------------------------

DOC = "Pay the invoice.\u202e\u3164\ufe0f"


def test_the_docstring_is_marked_in_every_channel(tmp_path: Path) -> None:
    call = call_with({"to": "bob"}, description=DOC)
    slack = json.dumps(request_blocks(call, context=None, base_url="https://x"), ensure_ascii=False)
    texts = {
        "slack": slack,
        "discord": discord_message(call)["content"],
    }
    shown = io.StringIO()
    layer = FunctionLayer(backend=TerminalBackend(input=io.StringIO("n\n\n"), output=shown))

    @layer.require_approval()
    def pay(to: str) -> None:
        """Pay the invoice.\u202e\u3164\ufe0f"""

    pay(to="bob")
    texts["terminal"] = shown.getvalue()
    for name, text in texts.items():
        assert "⟨U+202E⟩⟨U+3164⟩⟨U+FE0F⟩" in text, name
        assert not {"\u202e", "\u3164", "\ufe0f"} & set(text), name


def visible_text(page: str) -> str:
    """What a person reads on the page: text between tags, and the fields' values."""
    values = " ".join(re.findall(r'value="([^"]*)"', page))
    return html.unescape(re.sub(r"<[^>]+>", " ", page) + " " + values)


def test_the_inbox_page_has_no_hidden_character_anywhere(inbox: Inbox) -> None:
    """Arguments, docstring, edit form (typed and raw JSON), field names and descriptions."""
    schema = {
        "type": "object",
        "properties": {
            "to": {"type": "string", "description": "who\u2800"},
            "note": {"type": "string"},
            "mode": {"enum": ["fast\u180b", "slow"]},
        },
    }
    kwargs = {"to": "pay\ufe0fpal", "note": "p\u0430ypal\n\u034f", "mode": "slow", "k\u200b": 1}
    inbox.add_call("page-typed", kwargs=kwargs, parameters=schema, description=DOC)
    inbox.add_call("page-raw", kwargs=kwargs, description=DOC)
    inbox.login()
    for call_id in ("page-typed", "page-raw"):
        text = visible_text(inbox.client.get(f"/inbox/calls/{call_id}").text)
        found = {f"U+{ord(c):04X}" for c in text if make_visible(c)[1] and not c.isascii()}
        assert not found, (call_id, found)
        assert "pay⟨U+FE0F⟩pal" in text and "pay\\ufe0fpal" in text  # shown, and in the form


def test_an_untouched_edit_of_arguments_with_hidden_characters_is_a_plain_approval(
    inbox: Inbox,
) -> None:
    schema = {"type": "object", "properties": {"to": {"type": "string"}, "n": {"type": "integer"}}}
    kwargs = {"to": "pay\ufe0fpal", "n": 1}
    inbox.add_call("hidden-edit", kwargs=kwargs, parameters=schema)
    inbox.add_call("hidden-raw", kwargs=kwargs)
    inbox.login()
    for call_id in ("hidden-edit", "hidden-raw"):
        form = untouched_form(inbox, call_id)
        answer = inbox.client.post(f"/inbox/calls/{call_id}", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text[:500]
        status = inbox.call(call_id).status
        assert status is not None and status.approved is True
        assert status.edited_kwargs is None, (call_id, status.edited_kwargs)
