"""Block Kit for requests. Everything an LLM wrote is escaped for Slack's mrkdwn (``&``, ``<``,
``>``) and shown in code blocks or ``plain_text``, so arguments cannot ping ``@channel``, mention
users, forge links or add blocks: blocks are built here from fixed templates only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import functionlayer.display as display
from functionlayer.models import FunctionCall, HumanContact, ResponseOption

from functionlayer_server._channels._chat_outcome import OutcomeMarks, chat_outcomes
from functionlayer_server._outcome import outcome, render
from functionlayer_server._schema import allowed

__all__ = [
    "ACTION_APPROVE",
    "ACTION_APPROVE_CONFIRM",
    "ACTION_GRANT",
    "ACTION_REJECT",
    "ACTION_REJECT_OPTION",
    "ACTION_REPLY",
    "ACTION_RESPOND_OPTION",
    "VIEW_GRANT",
    "VIEW_REJECT",
    "VIEW_REPLY",
    "arguments_fit",
    "code_block",
    "confirm_blocks",
    "escape",
    "outcome_text",
    "plain",
    "reject_modal",
    "reply_modal",
    "request_blocks",
]

ACTION_APPROVE = "fl_approve"
ACTION_APPROVE_CONFIRM = "fl_approve_confirm"
"""The second, deliberate click that approves an irreversible function."""
ACTION_REJECT = "fl_reject"
ACTION_REJECT_OPTION = "fl_reject_option"
ACTION_REPLY = "fl_reply"
ACTION_RESPOND_OPTION = "fl_respond_option"
ACTION_OPEN = "fl_open"
VIEW_REJECT = "fl_reject"
VIEW_REPLY = "fl_reply"
ACTION_GRANT = "fl_grant"
VIEW_GRANT = "fl_grant_view"
INPUT_BLOCK = "fl_input"
INPUT_ACTION = "text"

_SECTION_LIMIT = 3000
_MAX_OPTION_BUTTONS = 20


def escape(text: str) -> str:
    """Slack mrkdwn control characters: nothing in ``text`` can become a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int = _SECTION_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text, limit) or " ", "emoji": False}


def code_block(text: str, limit: int = _SECTION_LIMIT) -> str:
    """``text`` as a mrkdwn code block it cannot break out of."""
    body = escape(text).replace("```", "`\u200b`\u200b`")
    room = limit - 8
    if len(body) > room:
        body = body[: room - 16] + "\n… (truncated)"
    return f"```\n{body}\n```"


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn, _SECTION_LIMIT)}}


def _context(parts: list[str]) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _clip(p, 2000)} for p in parts[:10]],
    }


def _value(request: FunctionCall | HumanContact, option: str | None = None) -> str:
    data: dict[str, Any] = {
        "kind": "function_call" if isinstance(request, FunctionCall) else "human_contact",
        "call_id": request.call_id,
    }
    if option is not None:
        data["option"] = option
    return _clip(json.dumps(data, separators=(",", ":")), 2000)


def _button(
    text: str, action_id: str, value: str, style: str | None = None, url: str | None = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _option_label(option: ResponseOption) -> str:
    return option.title or option.name


def inbox_url(base_url: str, request: FunctionCall | HumanContact) -> str:
    path = "calls" if isinstance(request, FunctionCall) else "contacts"
    return f"{base_url.rstrip('/')}/inbox/{path}/{quote(request.call_id, safe='')}"


_ARGUMENTS_ROOM = _SECTION_LIMIT - 20  # "*Arguments*\n" and the code fences


def _code_block_size(text: str) -> int:
    return len(escape(text).replace("```", "`\u200b`\u200b`")) + 8


def _arguments(call: FunctionCall) -> display.ShownArguments:
    return display.show_arguments(
        call.spec.kwargs, call.spec.parameters, room=_ARGUMENTS_ROOM, size=_code_block_size
    )


def arguments_fit(call: FunctionCall) -> bool:
    """Whether Slack can show every argument in full (the display rule of
    ``functionlayer.display.show_arguments``). When it cannot, the message offers no Approve
    button (nobody approves what they could not read) and links to the inbox."""
    return _arguments(call).complete


def _describe_request(
    request: FunctionCall | HumanContact, context: str | None
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    meta = [f"run `{escape(request.run_id)}`", f"call `{escape(request.call_id)}`"]
    if context:
        meta.append(escape(context))
    if isinstance(request, FunctionCall):
        spec = request.spec
        blocks.append({"type": "header", "text": plain(f"Approve {spec.fn}?", 150)})
        if spec.description:
            blocks.append(
                {"type": "section", "text": plain(display.make_visible(spec.description)[0])}
            )
        blocks.extend(_told(spec.context))
        arguments = _arguments(request).text
        status = request.status
        edited_call = status is not None and status.edited_kwargs is not None
        title = "*Arguments as proposed*" if edited_call else "*Arguments*"
        blocks.append(_section(title + "\n" + code_block(arguments, _ARGUMENTS_ROOM)))
        if status is not None and status.edited_kwargs is not None:
            compared = display.format_comparison(spec.kwargs, status.edited_kwargs, spec.parameters)
            blocks.append(
                _section("*Approved and run with these arguments*\n" + code_block(compared, 2900))
            )
    else:
        contact = request.spec
        blocks.append(
            {"type": "header", "text": plain(contact.subject or "A question for you", 150)}
        )
        blocks.append(_section(code_block(contact.msg)))
        blocks.extend(_told(contact.context))
    blocks.append(_context(meta))
    return blocks


def _told(context: Any) -> list[dict[str, Any]]:
    """The agent's words, never the system's: quoted in a code block (no mrkdwn, no links, no
    mentions), under a label saying so; nothing when there is no context."""
    told = display.format_context(context, limit=1200)
    return [_section(":speech_balloon: " + code_block(told, 2900))] if told else []


def request_blocks(
    request: FunctionCall | HumanContact,
    *,
    context: str | None,
    base_url: str,
    progress: str | None = None,
    irreversible: bool = False,
    grant: bool = False,
) -> list[dict[str, Any]]:
    """The message for a pending request, with its buttons. ``irreversible``: Approve asks
    for a second, deliberate click (``confirm_blocks``); the server refuses without it.
    ``grant``: also "Approve and allow similar…" (the operator's policy allows grants)."""
    blocks = _describe_request(request, context)
    if progress:
        blocks.append(_context([progress]))
    buttons: list[dict[str, Any]]
    if isinstance(request, FunctionCall):
        accepted = allowed(request.spec)
        buttons = []
        if irreversible:
            blocks.append(
                _section(":warning: *Irreversible*: approving asks you to confirm a second time.")
            )
        if "approve" in accepted and arguments_fit(request):
            label = "Approve…" if irreversible else "Approve"
            buttons.append(_button(label, ACTION_APPROVE, _value(request), "primary"))
            if grant and not irreversible:
                buttons.append(_button("Approve and allow similar…", ACTION_GRANT, _value(request)))
        elif "approve" in accepted:
            blocks.append(
                _section(
                    ":warning: *The arguments are too long to show here in full*, so this "
                    "message cannot approve the call. Open it in the inbox to read every "
                    f"argument and decide: <{inbox_url(base_url, request)}|open in the inbox>."
                )
            )
        if "reject" in accepted:
            buttons.append(_button("Reject…", ACTION_REJECT, _value(request), "danger"))
        options = (request.spec.reject_options or []) if "reject" in accepted else []
        option_action = ACTION_REJECT_OPTION
    else:
        buttons = [_button("Reply…", ACTION_REPLY, _value(request), "primary")]
        options = request.spec.response_options or []
        option_action = ACTION_RESPOND_OPTION
    buttons.append(_button("Open in inbox", ACTION_OPEN, "open", url=inbox_url(base_url, request)))
    blocks.append({"type": "actions", "block_id": "fl_actions", "elements": buttons})
    if options:
        elements = [
            _button(_option_label(o), f"{option_action}:{i}", _value(request, o.name))
            for i, o in enumerate(options[:_MAX_OPTION_BUTTONS])
        ]
        blocks.append({"type": "actions", "block_id": "fl_options", "elements": elements})
    return blocks


def confirm_blocks(call: FunctionCall, channel: str, ts: str) -> list[dict[str, Any]]:
    """The second step for an irreversible function, shown only to the person who clicked
    Approve: a confirm button naming the message it belongs to (``channel``/``ts``, checked
    against the deliveries again when clicked)."""
    value = json.loads(_value(call))
    value.update(channel=channel, ts=ts)
    return [
        _section(
            f":warning: `{escape(call.spec.fn)}` *cannot be undone*. Nothing was recorded yet: "
            "confirm to approve it with exactly the arguments shown."
        ),
        {
            "type": "actions",
            "block_id": "fl_confirm",
            "elements": [
                _button(
                    "Confirm: approve (irreversible)",
                    ACTION_APPROVE_CONFIRM,
                    _clip(json.dumps(value, separators=(",", ":")), 2000),
                    "danger",
                )
            ],
        },
    ]


# ``responded_by`` is a person's name in the directory, never a Slack mention (a name that looks
# like a Slack id must not ping that user): escaped like every other field.
OUTCOME = chat_outcomes(
    OutcomeMarks(":white_check_mark:", ":x:", ":speech_balloon:", ":hourglass:", bold="*"), escape
)


def outcome_text(request: FunctionCall | HumanContact) -> str:
    """One line: who decided what (used in the updated message and its fallback text)."""
    return render(outcome(request), OUTCOME)


def decided_blocks(
    request: FunctionCall | HumanContact, *, context: str | None
) -> list[dict[str, Any]]:
    """The message after the decision: the request as before, who decided what, no buttons."""
    return [*_describe_request(request, context), _section(outcome_text(request))]


@dataclass(frozen=True)
class _Form:
    """A modal with one text input: its callback id, title, the input's label, submit label."""

    callback_id: str
    title: str
    label: str
    submit: str


_REJECT_FORM = _Form(
    VIEW_REJECT, "Reject", "Feedback for the agent (why not, what to do instead)", "Reject"
)
_REPLY_FORM = _Form(VIEW_REPLY, "Reply", "Your answer", "Send")


def _modal(form: _Form, metadata: dict[str, Any], intro: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": form.callback_id,
        "title": plain(form.title, 24),
        "submit": plain(form.submit, 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": [
            _section(intro),
            {
                "type": "input",
                "block_id": INPUT_BLOCK,
                "label": plain(form.label, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "max_length": 3000,
                },
            },
        ],
    }


def reject_modal(call: FunctionCall, metadata: dict[str, Any]) -> dict[str, Any]:
    intro = f"Reject `{escape(call.spec.fn)}` (call `{escape(call.call_id)}`)"
    return _modal(_REJECT_FORM, metadata, intro)


def reply_modal(contact: HumanContact, metadata: dict[str, Any]) -> dict[str, Any]:
    return _modal(_REPLY_FORM, metadata, code_block(contact.spec.msg, 2900))
