"""Every channel shows a question's context (``HumanContactSpec.context``) as it shows a call's:
under the label saying the agent wrote it, quoted, hidden characters marked, never as markup
(Slack blocks, Discord embeds, Teams cards, email text and HTML, the terminal)."""

from __future__ import annotations

import io
import json

from functionlayer import (
    FunctionLayer,
    HumanContactSpec,
    RequestContext,
    TerminalBackend,
    request_context_scope,
)
from functionlayer._display import CONTEXT_LABEL
from functionlayer.models import HumanContact
from functionlayer_server._channels import (
    _discord_messages,
    _email_render,
    _slack_blocks,
    _teams_cards,
)

HOSTILE = "<b>pay</b> @everyone [yes](https://evil.example) \u202egnp.exe\u200b"

CONTACT = HumanContact(
    run_id="run",
    call_id="ctx-1",
    spec=HumanContactSpec(
        msg="Which account?", context=RequestContext(user_request=HOSTILE, reason="I must ask.")
    ),
)


def test_slack_shows_the_contacts_context_quoted_and_marked() -> None:
    blocks = _slack_blocks.request_blocks(CONTACT, context=None, base_url="https://fl.example")
    text = json.dumps(blocks, ensure_ascii=False)
    assert CONTEXT_LABEL in text and "⟨U+202E⟩" in text and "⟨U+200B⟩" in text
    assert "\u202e" not in text and "\u200b" not in text
    assert "&lt;b&gt;pay&lt;/b&gt;" in text or "```" in text  # inside a code block


def test_discord_shows_the_contacts_context_in_an_embed() -> None:
    embeds = _discord_messages.context_embeds(CONTACT)["embeds"]
    assert embeds[0]["title"] == CONTEXT_LABEL
    assert "⟨U+202E⟩" in embeds[0]["description"] and "I must ask." in embeds[0]["description"]


def test_teams_shows_the_contacts_context_as_plain_text_runs() -> None:
    card = _teams_cards.request_card(CONTACT, context=None, base_url="https://fl.example")
    text = json.dumps(card, ensure_ascii=False)
    assert CONTEXT_LABEL in text and "⟨U+202E⟩" in text and "\u202e" not in text
    assert '"type": "TextBlock", "text": "<b>pay' not in text


def test_email_shows_the_contacts_context_in_text_and_escaped_html() -> None:
    mail = _email_render.render_request(
        CONTACT,
        subject=None,
        context=None,
        approve_url=None,
        open_url="https://fl.example/inbox",
        expires="soon",
    )
    assert CONTEXT_LABEL in mail.text and "⟨U+202E⟩" in mail.text
    assert CONTEXT_LABEL in mail.html and "<b>pay</b>" not in mail.html
    assert "&lt;b&gt;pay&lt;/b&gt;" in mail.html


def test_the_terminal_shows_the_contacts_context() -> None:
    out = io.StringIO()
    fl = FunctionLayer(backend=TerminalBackend(input=io.StringIO("acct-9\n"), output=out))
    with request_context_scope(RequestContext(user_request=HOSTILE)):
        answer = fl.human_as_tool()("Which account?")
    assert answer == "acct-9"
    shown = out.getvalue()
    assert CONTEXT_LABEL in shown and "⟨U+202E⟩" in shown and "\u202e" not in shown
