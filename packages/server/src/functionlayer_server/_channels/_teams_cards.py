"""Adaptive Cards for requests in Microsoft Teams: the pending card, the decided card.

Everything an LLM wrote (the function name, its description, the arguments, option titles, the
question, the context) is put in ``TextRun`` elements of a ``RichTextBlock`` or in action
titles, which Adaptive Cards render as plain text: no markdown, no link. A card carries no
``msteams.entities``, so ``<at>…</at>`` in any text mentions nobody. Only the fixed labels of
this module are ``TextBlock`` text.

Arguments are shown under the one display rule (:func:`functionlayer.display.show_arguments`):
when they do not fit the card's budget, the card says so and offers no Approve (and the channel
refuses an approval of that call).

Every ``Action.Submit`` carries ``{"functionlayer": {"action", "kind", "call_id"[, "option"]}}``;
the reject and reply forms add the text input ``fl_text``. Teams sends both back in the
activity's ``value``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from functionlayer.display import (
    ShownArguments,
    format_arguments,
    format_context,
    make_visible,
    show_arguments,
)
from functionlayer.models import FunctionCall, HumanContact, ResponseOption

from functionlayer_server._channels._chat_outcome import OutcomeMarks, chat_outcomes
from functionlayer_server._outcome import outcome, render
from functionlayer_server._policy import option_text
from functionlayer_server._schema import allowed

__all__ = [
    "ACTION_APPROVE",
    "ACTION_REJECT",
    "ACTION_REJECT_OPTION",
    "ACTION_REPLY",
    "ACTION_RESPOND_OPTION",
    "ARGUMENTS_ROOM",
    "CARD_CONTENT_TYPE",
    "INPUT_ID",
    "CardRef",
    "arguments_fit",
    "decided_card",
    "kind_of",
    "message_activity",
    "outcome_text",
    "parse_value",
    "request_card",
]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"
DATA_KEY = "functionlayer"
INPUT_ID = "fl_text"

ACTION_APPROVE = "approve"
ACTION_REJECT = "reject"
ACTION_REJECT_OPTION = "reject_option"
ACTION_REPLY = "reply"
ACTION_RESPOND_OPTION = "respond_option"
_ACTIONS = (
    ACTION_APPROVE,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
)
_KINDS = ("function_call", "human_contact")

ARGUMENTS_ROOM = 3000
"""Characters of arguments a card shows; more and the card offers no Approve."""
_MAX_OPTIONS = 20
_TOO_LONG = (
    "The arguments are too long to show here in full, so this card cannot approve the call. "
    "Open it in the inbox to read every argument and decide."
)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_of(request: FunctionCall | HumanContact) -> str:
    return "function_call" if isinstance(request, FunctionCall) else "human_contact"


@dataclass(frozen=True)
class CardRef:
    """What a submitted card action says: the action, the request kind and call id, the option
    index (for option buttons), and the text typed into the form (reject, reply)."""

    action: str
    kind: str
    call_id: str
    option: int | None
    text: str | None


def parse_value(value: Any) -> CardRef | None:
    """The reference in an activity's ``value`` (a submitted card), or None when it is not one
    of ours. Only shapes this module writes are accepted."""
    if not isinstance(value, dict):
        return None
    data = value.get(DATA_KEY)
    if not isinstance(data, dict):
        return None
    action, kind, call_id = data.get("action"), data.get("kind"), data.get("call_id")
    if action not in _ACTIONS or kind not in _KINDS:
        return None
    if not isinstance(call_id, str) or not call_id or len(call_id) > 1024:
        return None
    option = data.get("option")
    wants_option = action in (ACTION_REJECT_OPTION, ACTION_RESPOND_OPTION)
    if wants_option != (option is not None):
        return None
    if option is not None and (
        isinstance(option, bool) or not isinstance(option, int) or not 0 <= option < _MAX_OPTIONS
    ):
        return None
    text = value.get(INPUT_ID)
    return CardRef(
        action=str(action),
        kind=str(kind),
        call_id=call_id,
        option=option,
        text=text[:10_000] if isinstance(text, str) else None,
    )


def _data(action: str, request: FunctionCall | HumanContact, option: int | None = None) -> Any:
    ref: dict[str, Any] = {"action": action, "kind": kind_of(request), "call_id": request.call_id}
    if option is not None:
        ref["option"] = option
    return {DATA_KEY: ref}


# -- elements ----------------------------------------------------------------------------------


def _label(text: str, **style: Any) -> dict[str, Any]:
    """A fixed label of this module (never agent text): a TextBlock."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _plain(text: str, **style: Any) -> dict[str, Any]:
    """Text somebody else wrote, shown literally: a RichTextBlock with one TextRun per line
    (TextRuns render no markdown)."""
    lines = text.split("\n") or [""]
    return {
        "type": "Container",
        "items": [
            {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": line, **style}]}
            for line in lines
        ],
    }


def _submit(title: str, data: Any, style: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "Action.Submit",
        "title": _clip(title, 80) or "?",
        "data": data,
    }
    if style:
        action["style"] = style
    return action


def _form(title: str, label: str, placeholder: str, submit: dict[str, Any]) -> dict[str, Any]:
    """An Action.ShowCard with a required text input and its submit button."""
    return {
        "type": "Action.ShowCard",
        "title": title,
        "card": {
            "type": "AdaptiveCard",
            "body": [
                {
                    "type": "Input.Text",
                    "id": INPUT_ID,
                    "label": label,
                    "placeholder": _clip(placeholder, 100),
                    "isMultiline": True,
                    "isRequired": True,
                    "maxLength": 3000,
                    "errorMessage": "Please write something: it is what the agent gets back.",
                }
            ],
            "actions": [submit],
        },
    }


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def message_activity(card: dict[str, Any]) -> dict[str, Any]:
    """A Bot Framework ``message`` activity carrying ``card`` (POST and PUT body)."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    }


def inbox_url(base_url: str, request: FunctionCall | HumanContact) -> str:
    path = "calls" if isinstance(request, FunctionCall) else "contacts"
    return f"{base_url.rstrip('/')}/inbox/{path}/{quote(request.call_id, safe='')}"


def _option_label(option: ResponseOption) -> str:
    return make_visible(option.title or option.name)[0]


# -- the cards -----------------------------------------------------------------------------------


def _arguments(call: FunctionCall) -> ShownArguments:
    return show_arguments(call.spec.kwargs, call.spec.parameters, room=ARGUMENTS_ROOM)


def arguments_fit(call: FunctionCall) -> bool:
    """Whether the card shows every argument in full (``show_arguments``); when it does not,
    the card offers no Approve and points to the inbox."""
    return _arguments(call).complete


def _describe(request: FunctionCall | HumanContact, context: str | None) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    if isinstance(request, FunctionCall):
        spec = request.spec
        body.append(_label("Approval requested", weight="Bolder", size="Medium"))
        fn = make_visible(_clip(spec.fn, 100))[0]
        body.append(_plain(f"Approve {fn}?", weight="Bolder"))
        if spec.description:
            body.append(_plain(_clip(make_visible(spec.description)[0], 300)))
        body.extend(_told(spec.context))
        body.append(_label("Arguments:", weight="Bolder"))
        body.append(_plain(_arguments(request).text, fontType="Monospace"))
        status = request.status
        if status is not None and status.edited_kwargs is not None:
            body.append(_label("Approved with these arguments:", weight="Bolder"))
            edited = format_arguments(status.edited_kwargs, spec.parameters)
            body.append(_plain(_clip(edited, ARGUMENTS_ROOM), fontType="Monospace"))
    else:
        contact = request.spec
        body.append(_label("A question for you", weight="Bolder", size="Medium"))
        if contact.subject:
            body.append(_plain(_clip(make_visible(contact.subject)[0], 200), weight="Bolder"))
        body.append(_plain(_clip(make_visible(contact.msg)[0], 3000)))
        body.extend(_told(contact.context))
    meta = f"run {_clip(request.run_id, 80)} · call {_clip(request.call_id, 80)}"
    if context:
        meta += f" · {_clip(context, 100)}"
    body.append(_plain(meta, isSubtle=True, size="Small"))
    return body


def _told(context: Any) -> list[dict[str, Any]]:
    """The agent's context, labelled and quoted as plain text runs (no markdown); nothing when
    there is none."""
    told = format_context(context, limit=1200)
    return [_plain(told, fontType="Monospace")] if told else []


def _options_text(options: list[ResponseOption], what: str) -> dict[str, Any]:
    lines = [
        f"{_clip(_option_label(o), 80)}: {_clip(make_visible(option_text(o))[0], 200)}"
        for o in options
    ]
    return _plain(f"{what}\n" + "\n".join(lines), size="Small")


_REJECTS = "Reject with a reason (what the agent gets):"
_ANSWERS = "Answer with an option (what the agent gets):"


def _option_actions(
    body: list[dict[str, Any]],
    request: FunctionCall | HumanContact,
    options: list[ResponseOption] | None,
    action: str,
    what: str,
) -> list[dict[str, Any]]:
    """A button per option (the first ``_MAX_OPTIONS``), each explained in ``body``."""
    shown = (options or [])[:_MAX_OPTIONS]
    if shown:
        body.append(_options_text(shown, what))
    return [_submit(_option_label(o), _data(action, request, i)) for i, o in enumerate(shown)]


def request_card(
    request: FunctionCall | HumanContact,
    *,
    context: str | None,
    base_url: str,
    progress: str | None = None,
) -> dict[str, Any]:
    """The card for a pending request, with its actions."""
    body = _describe(request, context)
    if progress:
        body.append(_label(_clip(progress, 100), isSubtle=True))
    actions: list[dict[str, Any]] = []
    option_actions: list[dict[str, Any]] = []
    if isinstance(request, FunctionCall):
        accepted = allowed(request.spec)
        if "approve" in accepted and arguments_fit(request):
            actions.append(_submit("Approve", _data(ACTION_APPROVE, request), "positive"))
        elif "approve" in accepted:
            body.append(_label(_TOO_LONG, color="Attention", weight="Bolder"))
        if "reject" in accepted:
            actions.append(
                _form(
                    "Reject…",
                    "Feedback for the agent",
                    "Why not, and what to do instead",
                    _submit("Reject", _data(ACTION_REJECT, request), "destructive"),
                )
            )
            options = request.spec.reject_options
            option_actions = _option_actions(body, request, options, ACTION_REJECT_OPTION, _REJECTS)
    else:
        actions.append(
            _form(
                "Reply…",
                "Your answer",
                request.spec.msg,
                _submit("Send", _data(ACTION_REPLY, request), "positive"),
            )
        )
        options = request.spec.response_options
        option_actions = _option_actions(body, request, options, ACTION_RESPOND_OPTION, _ANSWERS)
    if option_actions:
        body.append({"type": "ActionSet", "actions": option_actions})
    if base_url.startswith(("https://", "http://")):
        actions.append(
            {
                "type": "Action.OpenUrl",
                "title": "Open in inbox",
                "url": inbox_url(base_url, request),
            }
        )
    return _card(body, actions)


OUTCOME = chat_outcomes(OutcomeMarks())


def outcome_text(request: FunctionCall | HumanContact) -> str:
    """One line: who decided what (plain text)."""
    return render(outcome(request), OUTCOME)


def decided_card(request: FunctionCall | HumanContact, *, context: str | None) -> dict[str, Any]:
    """The card after the decision: the request as before, who decided what, no actions."""
    body = _describe(request, context)
    body.append(_plain(_clip(outcome_text(request), 1200), weight="Bolder"))
    return _card(body, [])
