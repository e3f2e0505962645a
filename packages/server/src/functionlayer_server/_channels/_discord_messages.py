"""Discord messages for requests: content, buttons, modals and interaction responses.

Everything an LLM wrote is either escaped for Discord markdown (every markdown character gets a
backslash, ``@`` gets a zero-width space after it) or shown in a code block it cannot close,
and every message is sent with ``allowed_mentions: {"parse": []}``, so arguments cannot ping
``@everyone``/``@here``, roles or users, forge links or format the message. Components are
built here from fixed templates only; their ``custom_id`` values in ``_discord_ids``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from functionlayer.display import (
    CONTEXT_LABEL,
    ShownArguments,
    format_comparison,
    format_context,
    make_visible,
    show_arguments,
)
from functionlayer.models import FunctionCall, HumanContact, ResponseOption

from functionlayer_server._channels import _discord_ids as ids
from functionlayer_server._channels._chat_outcome import OutcomeMarks, chat_outcomes
from functionlayer_server._channels._discord_ids import custom_id
from functionlayer_server._outcome import outcome, render
from functionlayer_server._schema import allowed

__all__ = [
    "CONTENT_LIMIT",
    "EMBEDS_TOTAL",
    "EMBED_LIMIT",
    "EPHEMERAL_FLAG",
    "INPUT_ID",
    "MAX_EMBEDS",
    "NO_MENTIONS",
    "TOO_LONG",
    "arguments_fit",
    "button",
    "clip",
    "code_block",
    "confirm_message",
    "decided_message",
    "describe",
    "ephemeral",
    "escape",
    "modal",
    "option_label",
    "outcome_text",
    "request_message",
]

INPUT_ID = "fl_text"

NO_MENTIONS: dict[str, Any] = {"parse": []}
"""Nothing in a message may ping anyone."""

EPHEMERAL_FLAG = 64
CONTENT_LIMIT = 2000
EMBED_LIMIT = 4096
EMBEDS_TOTAL = 6000
MAX_EMBEDS = 10
_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<:])")


def escape(text: str) -> str:
    """``text`` shown literally by Discord: no markdown, no mention, no link, no emoji."""
    return _MARKDOWN.sub(r"\\\1", text).replace("@", "@\u200b")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code_block(text: str, limit: int) -> str:
    """``text`` in a code block it cannot break out of (at most ``limit`` characters)."""
    body = text.replace("`", "`\u200b").replace("@", "@\u200b")
    room = limit - 8
    if len(body) > room:
        body = body[: max(room - 16, 0)] + "\n… (truncated)"
    return f"```\n{body}\n```"


def button(label: str, custom: str, style: int) -> dict[str, Any]:
    return {"type": 2, "style": style, "label": clip(label, 80) or "?", "custom_id": custom}


def _link(label: str, url: str) -> dict[str, Any]:
    return {"type": 2, "style": 5, "label": label, "url": url}


def _rows(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": 1, "components": buttons[i : i + 5]} for i in range(0, len(buttons), 5)]


def inbox_url(base_url: str, request: FunctionCall | HumanContact) -> str:
    path = "calls" if isinstance(request, FunctionCall) else "contacts"
    return f"{base_url.rstrip('/')}/inbox/{path}/{quote(request.call_id, safe='')}"


def option_label(option: ResponseOption) -> str:
    return option.title or option.name


# A pending call's message is at most CONTENT_LIMIT characters and its arguments block always
# fits whole: the title, description, meta line, progress line and the too-long notice have
# fixed budgets (together with the arguments, under CONTENT_LIMIT), so whether the arguments
# can be shown in full depends on the arguments only.
_ARGUMENTS_ROOM = 1200
_TITLE_ROOM = 140
_DESCRIPTION_ROOM = 150
_META_ROOM = 200
_PROGRESS_ROOM = 100
TOO_LONG = (
    "⚠ **The arguments are too long to show here in full**, so this message cannot approve "
    "the call. Open it in the inbox to read every argument and decide."
)


def _code_block_size(text: str) -> int:
    return len(text.replace("`", "`\u200b").replace("@", "@\u200b")) + 8


def _arguments(call: FunctionCall) -> ShownArguments:
    return show_arguments(
        call.spec.kwargs, call.spec.parameters, room=_ARGUMENTS_ROOM, size=_code_block_size
    )


def arguments_fit(call: FunctionCall) -> bool:
    """Whether the message shows every argument in full (the display rule of
    ``functionlayer.display.show_arguments``: every argument, hidden characters marked).
    When it does not, the message offers no Approve button and points to the inbox."""
    return _arguments(call).complete


def describe(request: FunctionCall | HumanContact, context: str | None) -> list[str]:
    lines: list[str] = []
    if isinstance(request, FunctionCall):
        spec = request.spec
        lines.append(clip(f"**Approve {escape(clip(spec.fn, 60))}?**", _TITLE_ROOM))
        if spec.description:
            description = make_visible(spec.description)[0]
            lines.append(clip(escape(description), _DESCRIPTION_ROOM))
        lines.append("Arguments:")
        lines.append(code_block(_arguments(request).text, _ARGUMENTS_ROOM))
        status = request.status
        if status is not None and status.edited_kwargs is not None:
            compared = format_comparison(spec.kwargs, status.edited_kwargs, spec.parameters)
            lines.append("Approved and run with these arguments (proposed → run):")
            lines.append(code_block(compared, 400))
    else:
        contact = request.spec
        lines.append(f"**{escape(clip(contact.subject or 'A question for you', 200))}**")
        lines.append(code_block(contact.msg, 1200))
    meta = f"run {escape(clip(request.run_id, 80))} · call {escape(clip(request.call_id, 80))}"
    if context:
        meta += f" · {escape(clip(context, 100))}"
    lines.append(clip(meta, _META_ROOM))
    return lines


def _content(lines: list[str]) -> str:
    return clip("\n".join(lines), CONTENT_LIMIT)


def request_message(
    request: FunctionCall | HumanContact,
    *,
    context: str | None,
    base_url: str,
    progress: str | None = None,
    irreversible: bool = False,
    grant: bool = False,
) -> dict[str, Any]:
    """The message for a pending request, with its buttons (``POST``/``PATCH`` body).
    ``irreversible``: Approve asks for a second, confirm click (the server refuses without).
    ``grant``: also "Approve and allow similar…" (the operator's policy allows grants)."""
    lines = describe(request, context)
    if progress:
        lines.append(clip(escape(progress), _PROGRESS_ROOM))
    buttons: list[dict[str, Any]]
    if isinstance(request, FunctionCall):
        accepted = allowed(request.spec)
        buttons = []
        if irreversible:
            lines.append("⚠ **Irreversible**: approving asks you to confirm a second time.")
        if "approve" in accepted and arguments_fit(request):
            label = "Approve…" if irreversible else "Approve"
            buttons.append(button(label, custom_id(ids.ACTION_APPROVE, request), 3))
            if grant and not irreversible:
                label = "Approve and allow similar…"
                buttons.append(button(label, custom_id(ids.ACTION_GRANT, request), 1))
        elif "approve" in accepted:
            lines.append(TOO_LONG)
        if "reject" in accepted:
            buttons.append(button("Reject…", custom_id(ids.ACTION_REJECT, request), 4))
        options = (request.spec.reject_options or []) if "reject" in accepted else []
        option_action = ids.ACTION_REJECT_OPTION
    else:
        buttons = [button("Reply…", custom_id(ids.ACTION_REPLY, request), 1)]
        options = request.spec.response_options or []
        option_action = ids.ACTION_RESPOND_OPTION
    if base_url.startswith(("https://", "http://")):
        buttons.append(_link("Open in inbox", inbox_url(base_url, request)))
    rows = _rows(buttons)
    option_buttons = [
        button(option_label(o), custom_id(option_action, request, option=i), 2)
        for i, o in enumerate(options[: ids.MAX_OPTIONS])
    ]
    rows.extend(_rows(option_buttons))
    return {
        "content": _content(lines),
        "components": rows,
        "allowed_mentions": NO_MENTIONS,
        **context_embeds(request),
    }


def context_embeds(request: FunctionCall | HumanContact) -> dict[str, Any]:
    """The agent's context as an embed titled with :data:`CONTEXT_LABEL`, its text in a code
    block it cannot close (no markdown, links or mentions); nothing when there is none."""
    told = format_context(request.spec.context, limit=1200)
    if not told:
        return {}
    body = told.split("\n", 1)[1] if "\n" in told else told
    return {"embeds": [{"title": CONTEXT_LABEL, "description": code_block(body, 4000)}]}


def confirm_message(call: FunctionCall) -> dict[str, Any]:
    """The second step for an irreversible function, only for the clicker (ephemeral): a
    confirm button."""
    text = (
        f"⚠ {escape(clip(call.spec.fn, 60))} **cannot be undone**. Nothing was recorded yet: "
        "confirm to approve it with exactly the arguments shown."
    )
    confirm = button("Confirm: approve (irreversible)", custom_id(ids.ACTION_CONFIRM, call), 4)
    return {
        "type": 4,
        "data": {
            "content": text,
            "flags": EPHEMERAL_FLAG,
            "components": _rows([confirm]),
            "allowed_mentions": NO_MENTIONS,
        },
    }


OUTCOME = chat_outcomes(OutcomeMarks("✅", "❌", "💬", "⌛", bold="**"), escape)


def outcome_text(request: FunctionCall | HumanContact) -> str:
    """One line: who decided what."""
    return render(outcome(request), OUTCOME)


def decided_message(request: FunctionCall | HumanContact, *, context: str | None) -> dict[str, Any]:
    """The message after the decision: the request as before, who decided what, no buttons."""
    outcome = clip(outcome_text(request), 600)
    body = clip("\n".join(describe(request, context)), CONTENT_LIMIT - len(outcome) - 1)
    return {
        "content": body + "\n" + outcome,
        "components": [],
        "allowed_mentions": NO_MENTIONS,
        **context_embeds(request),
    }


def modal(request: FunctionCall | HumanContact, button_id: str) -> dict[str, Any]:
    """A MODAL response (type 9) asking for rejection feedback or an answer."""
    if isinstance(request, FunctionCall):
        title = clip(f"Reject {request.spec.fn}", 45)
        label = "Feedback for the agent"
        placeholder = "Why not, and what to do instead"
    else:
        title = clip(f"Reply: {request.spec.subject or 'a question'}", 45)
        label = "Your answer"
        placeholder = clip(request.spec.msg, 100)
    text_input = {
        "type": 4,
        "custom_id": INPUT_ID,
        "style": 2,
        "label": label,
        "placeholder": placeholder,
        "min_length": 1,
        "max_length": 3000,
        "required": True,
    }
    return {
        "type": 9,
        "data": {
            "custom_id": ids.modal_id(button_id),
            "title": title,
            "components": [{"type": 1, "components": [text_input]}],
        },
    }


def ephemeral(text: str) -> dict[str, Any]:
    """A CHANNEL_MESSAGE_WITH_SOURCE response (type 4) only the clicker sees."""
    return {
        "type": 4,
        "data": {
            "content": clip(escape(text), CONTENT_LIMIT),
            "flags": EPHEMERAL_FLAG,
            "allowed_mentions": NO_MENTIONS,
        },
    }
