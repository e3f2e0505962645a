"""The email grant link ("Approve and allow similar calls…"): GET shows the call and the bounded
grant presets (``_grant_offer``), every scope in full, and decides nothing; POST, from that page,
approves the call and records the grant as the recipient's person, with ``via = "email"``. The
link is signed for one recipient and works once; where the operator's policy allows no grant
for the call, nothing is offered and nothing is made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse, Response
from functionlayer.models import FunctionCall

from functionlayer_server._channels import _grant_offer as offer
from functionlayer_server._channels._base import needs_confirmation
from functionlayer_server._channels._email_links import LinkToken
from functionlayer_server._channels._email_pages import PAGE_HEADERS, VIA, LinkPages
from functionlayer_server._channels._email_render import LinkPage, arguments_fit, pretty_arguments
from functionlayer_server._errors import ForbiddenError, ServerError
from functionlayer_server._service import FUNCTION_CALL

__all__ = ["EmailGrants"]

_FORM = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Approve and allow similar calls - FunctionLayer</title></head>
<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:640px;margin:24px auto;padding:0 16px;color:#1f2328">
<h2>Approve <code>{{ fn }}</code> and allow similar calls</h2>
<p>You are approving as {{ recipient }}. Calls covered by the grant are approved at once, in
your name, without asking you, until it expires, is used up or is revoked. It stops working by
itself if you could no longer decide such a call. Nothing happens until you press the button.</p>
<p>This call:</p>
<pre id="arguments" style="background:#f6f8fa;padding:12px;border-radius:6px;white-space:pre-wrap;word-break:break-word">{{ arguments }}</pre>
<form method="post" id="grant-form">
<fieldset><legend>Which arguments (every condition holds)</legend>
{% for key, label, lines in scopes %}<p><label><input type="radio" name="scope" value="{{ key }}"{% if loop.first %} checked{% endif %}> {{ label }}</label></p>
<pre class="scope" style="background:#f6f8fa;padding:8px;border-radius:6px;white-space:pre-wrap;word-break:break-word">{{ lines }}</pre>
{% endfor %}</fieldset>
{% for name, legend, options in choices %}<fieldset><legend>{{ legend }}</legend>
{% for value, label in options %}<label><input type="radio" name="{{ name }}" value="{{ value }}"{% if loop.first %} checked{% endif %}> {{ label }}</label><br>
{% endfor %}</fieldset>
{% endfor %}
<p><button type="submit" style="padding:10px 18px;border-radius:6px;background:#1f883d;color:#ffffff;border:0;cursor:pointer">Approve and grant</button></p>
</form>
</body></html>
"""
)


class EmailGrants:
    def __init__(self, pages: LinkPages) -> None:
        self.pages = pages

    async def _pending_call(self, token: str) -> tuple[LinkToken, FunctionCall] | HTMLResponse:
        """The grant link's call while it can still be approved here, or the page saying why not."""
        link = await self.pages.verify(token)
        if isinstance(link, HTMLResponse):
            return link
        if link.action != "grant" or link.kind != FUNCTION_CALL:
            return self.pages.page(
                LinkPage("Nothing to do", "This link does not grant anything.", status_code=400)
            )
        call = await self.pages.request_for(link)
        if not isinstance(call, FunctionCall):
            return self.pages.page(
                LinkPage("Request not found", "This request no longer exists.", status_code=404)
            )
        if await self.pages.link_used(token):
            return self.pages.used_page(call)
        if call.completed:
            return self.pages.decided_page(call)
        if not arguments_fit(call):
            return self.pages.too_long_page(call, link)
        service = self.pages.service
        project = await service.get_project(FUNCTION_CALL, call.call_id)
        if await needs_confirmation(service, call) or not await offer.grant_offered(
            service, call, project
        ):
            return self.pages.page(
                LinkPage(
                    "No grant possible",
                    "The operator's policy allows no grant for this call. Nothing was changed.",
                    status_code=403,
                    request=call,
                    open_url=self.pages.inbox_url(link.kind, link.call_id),
                )
            )
        return link, call

    async def show(self, token: str) -> Response:
        found = await self._pending_call(token)
        if isinstance(found, HTMLResponse):
            return found
        link, call = found
        labels = {"exact": "Exactly these arguments"}
        scopes = [
            (
                key,
                labels.get(
                    key, f"{key.removeprefix('upto:')} up to this call's value, the rest exactly"
                ),
                "\n".join(lines),
            )
            for key, lines in offer.scope_presets(call).items()
        ]
        choices = [
            ("agents", "Which agents", list(offer.AGENTS.items())),
            ("lifetime", "For how long", [(k, v[1]) for k, v in offer.LIFETIMES.items()]),
            ("uses", "At most this many calls", [(k, k) for k in offer.USES]),
        ]
        html = _FORM.render(
            fn=call.spec.fn,
            recipient=link.recipient,
            arguments=pretty_arguments(call.spec.kwargs, call.spec.parameters),
            scopes=scopes,
            choices=choices,
        )
        return HTMLResponse(html, headers=dict(PAGE_HEADERS))

    async def use(self, token: str, form: Mapping[str, Any]) -> Response:
        found = await self._pending_call(token)
        if isinstance(found, HTMLResponse):
            return found
        link, call = found
        pages, service = self.pages, self.pages.service
        responder = f"email:{link.recipient}"
        try:
            choice = offer.GrantChoice.parse(
                call, {k: v for k, v in form.items() if isinstance(v, str)}
            )
            person = await service.authorize(FUNCTION_CALL, call.call_id, responder, via=VIA)
        except ForbiddenError:
            return pages.page(
                LinkPage(
                    "Not allowed",
                    "You are not allowed to decide this request. Nothing was changed.",
                    status_code=403,
                    request=call,
                )
            )
        except ServerError as exc:
            return pages.page(LinkPage("Not possible", exc.message, status_code=422, request=call))
        if not await pages.claim_link(token, link):
            return pages.used_page(call)
        try:
            grant = await offer.approve_and_grant(
                service, call, choice, person=person.name, responder=responder, via=VIA
            )
        except ServerError as exc:
            code = exc.status_code if 400 <= exc.status_code < 500 else 422
            return pages.page(
                LinkPage("Nothing was granted", exc.message, status_code=code, request=call)
            )
        return pages.page(
            LinkPage(
                "Approved and granted",
                f"Approved, and granted ({grant.id}): {offer.describe_choice(call, choice)}. "
                "You can revoke it in the inbox.",
            )
        )
