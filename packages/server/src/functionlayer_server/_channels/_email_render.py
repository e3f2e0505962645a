"""What the email channel shows: the request email (text and HTML), the confirmation email after
a decision, and the pages behind the links. Everything the LLM wrote is untrusted, so every
template is rendered with autoescaping on (the text part goes out as text/plain, never HTML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jinja2
from functionlayer.display import (
    CONTEXT_LABEL,
    WARNING,
    context_lines,
    format_arguments,
    format_comparison,
    format_context,
    show_arguments,
)
from functionlayer.models import FunctionCall, HumanContact

from functionlayer_server._outcome import OutcomeTable, outcome, render

__all__ = [
    "ARGUMENTS_ROOM",
    "EmailContent",
    "LinkPage",
    "arguments_fit",
    "render_decision",
    "render_page",
    "render_request",
]

ARGUMENTS_ROOM = 50_000
"""Characters of arguments an email shows at most (hidden characters counted as their
markers). Beyond that the email offers no way to approve: the person opens the inbox."""


@dataclass(frozen=True)
class LinkPage:
    title: str
    message: str
    status_code: int = 200
    request: FunctionCall | HumanContact | None = None
    form_action: str | None = None
    """Set to show the approve button; the form posts back to the page's own URL."""
    button_label: str = "Approve"
    open_url: str | None = None
    irreversible: bool = False


class EmailContent(NamedTuple):
    """A request email: its subject and its two parts."""

    subject: str
    text: str
    html: str


_BASE_STYLE = (
    "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;"
    "max-width:640px;margin:0 auto;padding:16px"
)
_BUTTON = (
    "display:inline-block;padding:10px 18px;border-radius:6px;text-decoration:none;"
    "font-weight:600;margin-right:8px"
)

_TEMPLATES = {
    # What the agent told the person (shown in the request email and on the link pages).
    "told.html": """{% if told %}
<div style="border-left:4px solid #9a6700;background:#fff8c5;padding:8px 12px;margin:12px 0;border-radius:6px">
<p style="margin:0 0 4px;font-weight:600;color:#9a6700">{{ context_label }}</p>
{% if told_marked %}<p style="margin:0 0 4px;color:#b42318">{{ warning }}</p>{% endif %}
{% for line in told %}<p style="margin:6px 0 2px;font-size:13px;font-weight:600">{{ line.label }}</p>
<blockquote style="margin:0;padding:0 0 0 10px;border-left:2px solid #d4a72c;white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px">{{ line.text }}</blockquote>
{% endfor %}
</div>
{% endif %}
""",
    "request.html": """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="{{ style }}">
<h2 style="margin-top:0">{{ title }}</h2>
{% if context %}<p style="color:#59636e">For {{ context }}.</p>{% endif %}
{% include "told.html" %}
{% if call %}
<p>An agent wants to run <strong><code>{{ function }}</code></strong> with these arguments:</p>
{% if irreversible %}<p style="color:#b42318;font-weight:600">⚠ Irreversible: it cannot be undone. Approving asks you to confirm on a page.</p>{% endif %}
<pre style="background:#f6f8fa;padding:12px;border-radius:6px;white-space:pre-wrap;word-break:break-word">{{ arguments }}</pre>
{% else %}
<p>An agent asks:</p>
<blockquote style="border-left:4px solid #d1d9e0;margin:0;padding:4px 12px;white-space:pre-wrap">{{ message }}</blockquote>
{% endif %}
<table style="color:#59636e;font-size:13px;margin:12px 0">
<tr><td>Run</td><td><code>{{ run_id }}</code></td></tr>
<tr><td>Call id</td><td><code>{{ call_id }}</code></td></tr>
</table>
<p>
{% if approve_url %}<a href="{{ approve_url }}" style="{{ button }};background:#1f883d;color:#ffffff">Approve</a>{% endif %}
{% if grant_url %}<a href="{{ grant_url }}" style="{{ button }};background:#f6f8fa;color:#1a7f37;border:1px solid #1f883d">Approve and allow similar calls…</a>{% endif %}
<a href="{{ open_url }}" style="{{ button }};background:#f6f8fa;color:#1f2328;border:1px solid #d1d9e0">Open in the inbox</a>
</p>
<p style="color:#59636e;font-size:13px">{{ instructions }}</p>
<p style="color:#59636e;font-size:12px">{% if approve_url %}The Approve link works once. {% endif %}The links expire {{ expires }}. Sent by FunctionLayer.</p>
</body></html>
""",
    "request.txt": """{{ title }}

{% if context %}
For {{ context }}.

{% endif %}
{% if told_text %}
{{ told_text }}

{% endif %}
{% if call %}
{% if irreversible %}
IRREVERSIBLE: it cannot be undone. Approve with the link (it asks you to confirm on a page); a reply cannot approve it.

{% endif %}
An agent wants to run {{ function }} with these arguments:

{{ arguments }}
{% else %}
An agent asks:

{{ message }}
{% endif %}

Run: {{ run_id }}
Call id: {{ call_id }}

{% if approve_url %}
Approve: {{ approve_url }}
{% endif %}
{% if grant_url %}
Approve and allow similar calls (you choose the scope on the page): {{ grant_url }}
{% endif %}
Open in the inbox: {{ open_url }}

{{ instructions }}
{% if approve_url %}The Approve link works once. {% endif %}The links expire {{ expires }}.
""",
    "page.html": """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ title }} - FunctionLayer</title></head>
<body style="{{ style }}">
<h2>{{ title }}</h2>
<p>{{ message }}</p>
{% if function %}
{% if irreversible %}<p style="color:#b42318;font-weight:600">⚠ <code>{{ function }}</code> is irreversible: it cannot be undone.</p>{% endif %}
{% include "told.html" %}
<p>Function: <strong><code>{{ function }}</code></strong></p>
<pre style="background:#f6f8fa;padding:12px;border-radius:6px;white-space:pre-wrap;word-break:break-word">{{ arguments }}</pre>
{% if run_id %}<p style="color:#59636e;font-size:13px">Run <code>{{ run_id }}</code>, call <code>{{ call_id }}</code></p>{% endif %}
{% endif %}
{% if form_action %}
<form method="post">
<button type="submit" style="{{ button }};background:#1f883d;color:#ffffff;border:0;cursor:pointer">{{ button_label }}</button>
</form>
{% endif %}
{% if open_url %}<p><a href="{{ open_url }}">Open the request in the inbox</a> to reject it with feedback.</p>{% endif %}
</body></html>
""",
}

_html = jinja2.Environment(
    loader=jinja2.DictLoader({k: v for k, v in _TEMPLATES.items() if k.endswith(".html")}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
# text/plain: nothing is interpreted by the reader, so no escaping (and none is wanted).
_text = jinja2.Environment(
    loader=jinja2.DictLoader({k: v for k, v in _TEMPLATES.items() if k.endswith(".txt")}),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
)


def pretty_arguments(kwargs: Any, schema: dict[str, Any] | None = None) -> str:
    """Signature order, real line breaks, hidden characters marked (``functionlayer.display``)."""
    return format_arguments(kwargs, schema)


def arguments_fit(call: FunctionCall) -> bool:
    """Whether the email shows every argument in full (the display rule of
    ``functionlayer.display.show_arguments``). When it does not, the email has no Approve
    link, its links cannot approve and a reply cannot approve: the person decides in the inbox."""
    return show_arguments(call.spec.kwargs, call.spec.parameters, room=ARGUMENTS_ROOM).complete


def one_line(text: str, limit: int = 180) -> str:
    """For headers: no line breaks (header injection) and a sane length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_request(
    request: FunctionCall | HumanContact,
    *,
    subject: str | None,
    context: str | None,
    approve_url: str | None,
    open_url: str,
    grant_url: str | None = None,
    expires: str,
    irreversible: bool = False,
) -> EmailContent:
    is_call = isinstance(request, FunctionCall)
    if isinstance(request, FunctionCall):
        title = f"Approval needed: {request.spec.fn}"
        shown = show_arguments(request.spec.kwargs, request.spec.parameters, room=ARGUMENTS_ROOM)
        function, arguments, message = request.spec.fn, shown.text, ""
        instructions = (
            "Reply to this email: a first line of 'approve' (or 'yes') approves the call; "
            "any other reply rejects it and your text goes back to the agent as feedback."
            if shown.complete and not irreversible
            else "This function is irreversible: a reply cannot approve it. Use the Approve "
            "link, which asks you to confirm; any other reply rejects the call and your text "
            "goes back to the agent as feedback."
            if shown.complete
            else "The arguments are too long to show in an email, so this email cannot approve "
            "the call: open it in the inbox to read every argument and decide. Any reply "
            "rejects the call and your text goes back to the agent as feedback."
        )
    else:
        title = "An agent has a question for you"
        function, arguments, message = "", "", request.spec.msg
        instructions = (
            "Reply to this email with your answer; the text of your reply goes back to the agent."
        )
    values = {
        "title": title,
        "context": context,
        "call": is_call,
        "function": function,
        "arguments": arguments,
        "message": message,
        "run_id": request.run_id,
        "call_id": request.call_id,
        "approve_url": approve_url,
        "grant_url": grant_url,
        "open_url": open_url,
        "instructions": instructions,
        "expires": expires,
        "style": _BASE_STYLE,
        "button": _BUTTON,
        "irreversible": irreversible and is_call,
        **_told(request),
    }
    return EmailContent(
        subject=one_line(subject or title),
        text=_text.get_template("request.txt").render(values),
        html=_html.get_template("request.html").render(values),
    )


def _told(request: FunctionCall | HumanContact | None) -> dict[str, Any]:
    """The agent's context for the templates: labelled, quoted, hidden characters marked."""
    context = request.spec.context if request is not None else None
    lines = context_lines(context, limit=4000)
    return {
        "told": lines,
        "told_marked": any(line.marked for line in lines),
        "told_text": format_context(context, limit=4000),
        "context_label": CONTEXT_LABEL,
        "warning": WARNING,
    }


OUTCOME = OutcomeTable(
    lines={
        "pending": "The request is still waiting for an answer.",
        "approved": "Approved by {who}{edited}{approvals}{comment_suffix}.",
        "rejected": "Rejected{option} by {who} with feedback: {comment}",
        "answered": "Answered by {who}: {response}",
        "answered_instead": "Answered by {who} instead of running it: {response}",
        "expired": "The request expired before anyone answered; nothing was run ({comment}).",
        "abandoned": "Abandoned: the agent stopped waiting before anyone answered; nothing was "
        "run{comment_suffix}.",
    }
)


def describe_decision(request: FunctionCall | HumanContact) -> str:
    return render(outcome(request), OUTCOME)


def render_decision(request: FunctionCall | HumanContact) -> str:
    """The text of the confirmation email sent in the thread after a decision."""
    what = request.spec.fn if isinstance(request, FunctionCall) else "the agent's question"
    return (
        f"{describe_decision(request)}\n\n"
        f"Request: {what} (call id {request.call_id}, run {request.run_id}).\n"
        "This request is closed; further replies are ignored.\n"
    )


def render_page(page: LinkPage) -> str:
    request = page.request
    values: dict[str, Any] = {
        "title": page.title,
        "message": page.message,
        "function": "",
        "arguments": "",
        "run_id": "",
        "call_id": "",
        "form_action": page.form_action,
        "button_label": page.button_label,
        "open_url": page.open_url,
        "style": _BASE_STYLE,
        "button": _BUTTON,
        "irreversible": page.irreversible,
        **_told(request),
    }
    if isinstance(request, FunctionCall):
        status = request.status
        edited = status.edited_kwargs if status is not None else None
        values.update(
            function=request.spec.fn,
            arguments=pretty_arguments(request.spec.kwargs, request.spec.parameters)
            if edited is None
            else format_comparison(request.spec.kwargs, edited, request.spec.parameters),
            run_id=request.run_id,
            call_id=request.call_id,
        )
    return _html.get_template("page.html").render(values)
