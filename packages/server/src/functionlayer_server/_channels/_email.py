"""The email channel: requests go out over SMTP, answers come back as link clicks or replies.

Delivery: every addressed recipient (the channel's address and its additional to/cc/bcc
recipients) gets a personal copy of the request (text + HTML) with its own signed, expiring,
single-use links, so a click identifies who approved (quorum counts people, not emails). The
To/Cc headers list everyone as usual; Bcc recipients get their copy without appearing anywhere.
Each copy has a stable Message-ID (per request and recipient, an HMAC under the server's secret
key), mapped durably to the request so replies can be matched by ``In-Reply-To``/``References``.
That Message-ID is what authenticates a reply as its recipient's, so it never leaves the server
except in that recipient's own copy: it is not kept in the audit trail (the ``delivered`` entry
lists recipients, not ids; :meth:`EmailChannel.update` derives the ids again), and the reply
mapping is keyed by its hash. Replies threading to a message sent before this rule (whose id an
agent could have read in the audit) decide nothing: they are refused and audited.

Links (``/email/links/<token>``): "Approve" shows a confirmation page on GET and decides only on
POST (mail scanners fetch GET links); "Open in the inbox" redirects to the login-protected inbox
page, where the request can be rejected with feedback or answered. "Open" grants nothing by
itself, so it is not consumed (a scanner's prefetch would otherwise burn it).

Replies (``POST /email/inbound``, the raw MIME message, authenticated with
``email_inbound_secret``): accepted only from an addressed recipient; the quoted thread and
signature are dropped; a first line of approve/approved/yes/y approves, any other text rejects
with that text as feedback, or answers a human-contact request.

All decisions go through the :class:`~functionlayer_server.ApprovalService` with
``via="email"``; refused attempts are audited and decide nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from functionlayer.models import (
    ContactChannel,
    FunctionCall,
    FunctionCallStatus,
)

from functionlayer_server._channels._base import ChannelRequest, DeliveryStore
from functionlayer_server._channels._email_inbound import (
    InboundError,
    is_approval,
    parse_reply,
)
from functionlayer_server._channels._email_links import LinkError, LinkSigner, LinkToken, use_key
from functionlayer_server._channels._email_render import (
    LinkPage,
    arguments_fit,
    describe_decision,
    one_line,
    render_decision,
    render_page,
    render_request,
)
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
)
from functionlayer_server._schema import allowed
from functionlayer_server._service import FUNCTION_CALL, HUMAN_CONTACT, ApprovalService
from functionlayer_server._settings import Settings
from functionlayer_server._store._base import AuditRow

__all__ = ["INBOUND_PATH", "LINK_PREFIX", "SECRET_HEADER", "EmailChannel", "create_channel"]

log = logging.getLogger("functionlayer_server.channels.email")

VIA = "email"
LINK_PREFIX = "/email/links"
INBOUND_PATH = "/email/inbound"
SECRET_HEADER = "X-FunctionLayer-Inbound-Secret"
SMTP_TIMEOUT_SECONDS = 30.0
_LEGACY_MSGID_KEY = "email-msgid:"
"""Reply mapping of messages sent while their ids were also in the (agent-readable) audit."""
_REPLY_KEY = "email-reply:v2:"
"""Reply mapping: the hash of a private Message-ID -> the request and that copy's recipient."""
# Form fields in which inbound-mail services post the raw message (Mailgun, SendGrid, ...).
_RAW_FIELDS = ("body-mime", "email", "raw", "mime", "message")

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The token is in the URL: never send it anywhere as a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> EmailChannel | None:
    """The email channel, or None while ``smtp_host`` is not configured."""
    if not getattr(settings, "smtp_host", None):
        return None
    return EmailChannel(service, settings, deliveries)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    sender: str
    """The From header (may include a display name)."""

    @property
    def sender_address(self) -> str:
        return email.utils.parseaddr(self.sender)[1]


def _kind(request: ChannelRequest) -> str:
    return FUNCTION_CALL if isinstance(request, FunctionCall) else HUMAN_CONTACT


def _address(value: str) -> str:
    """A bare, lower-cased address, or ValueError: LLM- or config-written addresses must not
    smuggle extra recipients or header lines."""
    text = value.strip()
    _name, addr = email.utils.parseaddr(text)
    if (
        not addr
        or addr != text
        or addr.count("@") != 1
        or any(c.isspace() or c in "<>,;\"'\\" for c in addr)
        or len(addr) > 254
    ):
        raise ValueError(f"not a plain email address: {value!r}")
    local, _, domain = addr.partition("@")
    if not local or not domain:
        raise ValueError(f"not a plain email address: {value!r}")
    return addr.lower()


def _bracket(msgid: str) -> str:
    text = " ".join(msgid.split())
    if any(c.isspace() for c in text) or not text:
        raise ValueError(f"not a Message-ID: {msgid!r}")
    return text if text.startswith("<") and text.endswith(">") else f"<{text.strip('<>')}>"


def _reply_key(msgid: str) -> str:
    """The durable key of a Message-ID's reply mapping (its hash, not the id)."""
    return _REPLY_KEY + hashlib.sha256(msgid.encode("utf-8")).hexdigest()


def _send_sync(config: SmtpConfig, messages: list[tuple[EmailMessage, list[str]]]) -> None:
    """One SMTP session for a batch of messages (runs in a worker thread)."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config.port == 465:  # implicit TLS
        smtp = smtplib.SMTP_SSL(
            config.host, config.port, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=SMTP_TIMEOUT_SECONDS)
    with smtp:
        smtp.ehlo()
        if config.starttls and config.port != 465:
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, config.password or "")
        for message, recipients in messages:
            smtp.send_message(message, from_addr=config.sender_address, to_addrs=recipients)


_TOO_LONG_REASON = "the email could not show every argument, so it cannot approve"


class EmailChannel:
    name = VIA

    def __init__(
        self, service: ApprovalService, settings: Settings, deliveries: DeliveryStore
    ) -> None:
        self.service = service
        self.settings = settings
        self.deliveries = deliveries
        secret = settings.secret_key
        if not secret:
            raise ValueError("the email channel needs settings.secret_key to sign its links")
        self._secret = secret
        self.signer = LinkSigner(secret)
        sender = getattr(settings, "email_from", None) or "FunctionLayer <functionlayer@localhost>"
        self.smtp = SmtpConfig(
            host=str(settings.smtp_host),
            port=int(getattr(settings, "smtp_port", 587)),
            username=getattr(settings, "smtp_username", None),
            password=getattr(settings, "smtp_password", None),
            starttls=bool(getattr(settings, "smtp_starttls", True)),
            sender=sender,
        )
        _address(self.smtp.sender_address)  # a bad email_from fails at start, not per request
        self.link_ttl = float(getattr(settings, "email_link_ttl_seconds", 7 * 24 * 3600))
        self.inbound_secret: str | None = getattr(settings, "email_inbound_secret", None)
        self._domain = self.smtp.sender_address.rpartition("@")[2] or "localhost"

    # -- Channel protocol -------------------------------------------------------------------

    def handles(self, target: ContactChannel) -> bool:
        return target.email is not None

    async def send(self, messages: list[tuple[EmailMessage, list[str]]]) -> None:
        await asyncio.to_thread(_send_sync, self.smtp, messages)

    def message_id(self, kind: str, call_id: str, recipient: str) -> str:
        """Stable per request and recipient (a re-delivery reuses it), unguessable, private
        (see the module docstring). The ``reply-v2`` label makes it differ from the ids of
        messages sent while ids were also written to the audit trail."""
        digest = hmac.new(
            self._secret.encode(),
            f"reply-v2\0{kind}\0{call_id}\0{recipient.lower()}".encode(),
            hashlib.sha256,
        ).hexdigest()[:32]
        return f"<fl-{digest}@{self._domain}>"

    def _url(self, path: str) -> str:
        return self.settings.base_url + path

    def _inbox_url(self, kind: str, call_id: str) -> str:
        section = "calls" if kind == FUNCTION_CALL else "contacts"
        return self._url(f"/inbox/{section}/{quote(call_id, safe='')}")

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        channel = target.email
        if channel is None:
            raise ValueError("not an email target")
        kind = _kind(request)
        to = [_address(channel.address)]
        cc: list[str] = []
        bcc: list[str] = []
        for extra in channel.additional_recipients or ():
            {"to": to, "cc": cc, "bcc": bcc}[extra.field].append(_address(extra.address))
        recipients = list(dict.fromkeys(to + cc + bcc))
        in_reply_to = (
            _bracket(channel.in_reply_to_message_id) if channel.in_reply_to_message_id else None
        )
        references = (
            [_bracket(r) for r in channel.references_message_id.split()]
            if channel.references_message_id
            else []
        )
        if in_reply_to and in_reply_to not in references:
            references.append(in_reply_to)
        now = self.service.clock.now()
        expires_at = now + self.link_ttl
        expires = datetime.fromtimestamp(expires_at, UTC).strftime("on %Y-%m-%d at %H:%M UTC")
        context = channel.context_about_user
        irreversible = await self._irreversible(request)
        message_ids: dict[str, str] = {}
        batch: list[tuple[EmailMessage, list[str]]] = []
        subject = ""
        for recipient in recipients:
            approve_url = None
            if (
                isinstance(request, FunctionCall)
                and "approve" in allowed(request.spec)
                and arguments_fit(request)
            ):
                approve_url = self._url(
                    f"{LINK_PREFIX}/"
                    + self.signer.sign(
                        kind=kind,
                        call_id=request.call_id,
                        action="approve",
                        recipient=recipient,
                        expires_at=expires_at,
                    )
                )
            open_url = self._url(
                f"{LINK_PREFIX}/"
                + self.signer.sign(
                    kind=kind,
                    call_id=request.call_id,
                    action="open",
                    recipient=recipient,
                    expires_at=expires_at,
                )
            )
            content = render_request(
                request,
                subject=channel.subject,
                context=context,
                approve_url=approve_url,
                open_url=open_url,
                expires=expires,
                irreversible=irreversible,
            )
            subject = content.subject
            msgid = self.message_id(kind, request.call_id, recipient)
            message_ids[recipient] = msgid
            message = EmailMessage()
            message["From"] = self.smtp.sender
            message["To"] = ", ".join(to)
            if cc:
                message["Cc"] = ", ".join(cc)
            message["Subject"] = content.subject
            message["Message-ID"] = msgid
            message["Date"] = email.utils.formatdate(now, usegmt=True)
            if in_reply_to:
                message["In-Reply-To"] = in_reply_to
            if references:
                message["References"] = " ".join(references)
            message["X-FunctionLayer-Call-Id"] = one_line(request.call_id, 300)
            message["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to us
            message.set_content(content.text)
            message.add_alternative(content.html, subtype="html")
            batch.append((message, [recipient]))
        # The reply mapping goes first: a reply can never arrive for a message we cannot match.
        await self._remember_message_ids(kind, request.call_id, message_ids)
        await self.send(batch)
        # No Message-IDs here: the delivery is an audit entry, readable with an agent token.
        await self.deliveries.save_delivery(
            request.call_id,
            self.name,
            {
                "recipients": recipients,
                "to": to,
                "cc": cc,
                "subject": subject,
                "tier": tier,
            },
            kind=kind,
        )

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """A short confirmation in each recipient's thread: who decided what."""
        text = render_decision(request)
        kind = _kind(request)
        batch: list[tuple[EmailMessage, list[str]]] = []
        seen: set[str] = set()
        for delivery in deliveries:
            ids = delivery.get("message_ids")  # deliveries recorded before ids were private
            if not isinstance(ids, dict):
                recipients = delivery.get("recipients")
                if not isinstance(recipients, list):
                    continue
                ids = {str(r): self.message_id(kind, request.call_id, str(r)) for r in recipients}
            subject = str(delivery.get("subject") or "FunctionLayer request")
            for recipient, msgid in ids.items():
                if recipient in seen:
                    continue
                seen.add(recipient)
                message = EmailMessage()
                message["From"] = self.smtp.sender
                message["To"] = recipient
                message["Subject"] = one_line(
                    subject if subject.lower().startswith("re:") else f"Re: {subject}"
                )
                message["Message-ID"] = email.utils.make_msgid(domain=self._domain)
                message["Date"] = email.utils.formatdate(self.service.clock.now(), usegmt=True)
                message["In-Reply-To"] = msgid
                message["References"] = msgid
                message["Auto-Submitted"] = "auto-generated"
                message.set_content(text)
                batch.append((message, [recipient]))
        if batch:
            await self.send(batch)

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get(LINK_PREFIX + "/{token}")
        async def show_link(token: str) -> Response:
            return await self._show_link(token)

        @router.post(LINK_PREFIX + "/{token}")
        async def use_link(token: str) -> Response:
            return await self._use_link(token)

        @router.post(INBOUND_PATH)
        async def inbound(request: Request) -> Response:
            return await self._inbound(request)

        return router

    # -- durable records (the server's key-value table) --------------------------------------

    async def _remember_message_ids(self, kind: str, call_id: str, ids: dict[str, str]) -> None:
        """Message-ID -> request and the one recipient of that copy, written before sending:
        a reply (even an instant one) can always be matched to whose copy it answers. Keyed
        by the id's hash: the id itself is kept nowhere but in the recipient's copy."""
        for recipient, msgid in ids.items():
            await self.service.store.remember(
                _reply_key(msgid.strip("<>")),
                {"kind": kind, "call_id": call_id, "recipient": recipient.lower()},
            )

    async def _find_request(self, message_ids: list[str]) -> tuple[str, str, str | None] | None:
        """(kind, call id, the recipient of the copy replied to) for the first known
        Message-ID. The recipient is None when the id cannot prove whose copy it was: a
        message sent before ids were private (its id was in the agent-readable audit)."""
        for msgid in message_ids:
            found = await self.service.store.recall(_reply_key(msgid))
            if found is not None:
                return str(found["kind"]), str(found["call_id"]), str(found["recipient"])
        for msgid in message_ids:
            legacy = await self.service.store.recall(_LEGACY_MSGID_KEY + msgid)
            if legacy is not None:
                return str(legacy["kind"]), str(legacy["call_id"]), None
        return None

    async def _link_used(self, token: str) -> bool:
        return await self.service.store.recall(use_key(token)) is not None

    async def _claim_link(self, token: str, link: LinkToken) -> bool:
        """Mark the link used, atomically with its audit entry; False if it already was."""
        now = self.service.clock.now()
        audit = AuditRow(
            kind=link.kind,
            call_id=link.call_id,
            at=now,
            actor=link.recipient,
            via=VIA,
            action="link_used",
            details={"action": link.action, "nonce": link.nonce},
            project=await self.service.get_project(link.kind, link.call_id),
        )
        return await self.service.store.claim_once(
            use_key(token), {"at": now, "call_id": link.call_id}, audit
        )

    async def _refuse(self, kind: str, call_id: str, who: str, reason: str) -> None:
        await self.service.record_audit(
            kind, call_id, who=who, via=VIA, action="answer_refused", details={"reason": reason}
        )

    # -- links ------------------------------------------------------------------------------

    def _page(self, page: LinkPage) -> HTMLResponse:
        return HTMLResponse(
            render_page(page), status_code=page.status_code, headers=dict(_PAGE_HEADERS)
        )

    async def _request_for(self, link: LinkToken) -> ChannelRequest | None:
        try:
            if link.kind == FUNCTION_CALL:
                return await self.service.get_function_call(link.call_id)
            return await self.service.get_human_contact(link.call_id)
        except NotFoundError:
            return None

    async def _irreversible(self, request: ChannelRequest) -> bool:
        """Whether approving takes the confirmation step (the agent's mark or the operator's)."""
        if not isinstance(request, FunctionCall):
            return False
        if request.spec.irreversible:
            return True
        project = await self.service.get_project(FUNCTION_CALL, request.call_id)
        return project is not None and await self.service.irreversible(request, project)

    async def _verify(self, token: str) -> LinkToken | HTMLResponse:
        try:
            return self.signer.verify(token, now=self.service.clock.now())
        except LinkError as exc:
            title = "Link expired" if exc.expired else "Link not valid"
            return self._page(
                LinkPage(title=title, message=exc.reason, status_code=410 if exc.expired else 400)
            )

    def _decided_page(self, request: ChannelRequest) -> HTMLResponse:
        return self._page(
            LinkPage(
                title="Already decided",
                message=describe_decision(request) + " Nothing was changed.",
                status_code=409,
                request=request,
            )
        )

    def _too_long_page(self, request: FunctionCall, link: LinkToken) -> HTMLResponse:
        return self._page(
            LinkPage(
                "Open it in the inbox",
                "The arguments are too long to show in an email, so an email link cannot "
                "approve this call. Nothing was changed.",
                status_code=422,
                open_url=self._inbox_url(link.kind, link.call_id),
            )
        )

    async def _show_link(self, token: str) -> Response:
        link = await self._verify(token)
        if isinstance(link, HTMLResponse):
            return link
        if link.action == "open":
            return RedirectResponse(
                self._inbox_url(link.kind, link.call_id),
                status_code=303,
                headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
            )
        request = await self._request_for(link)
        if request is None:
            return self._page(
                LinkPage("Request not found", "This request no longer exists.", status_code=404)
            )
        if await self._link_used(token):
            return self._page(
                LinkPage(
                    "Link already used",
                    "This link has already been used; each link works once. Nothing was changed.",
                    status_code=409,
                    request=request,
                )
            )
        if request.completed:
            return self._decided_page(request)
        if isinstance(request, FunctionCall) and not arguments_fit(request):
            return self._too_long_page(request, link)
        irreversible = await self._irreversible(request)
        return self._page(
            LinkPage(
                title="Approve this irreversible call?" if irreversible else "Approve this call?",
                message=f"You are approving as {link.recipient}. Nothing happens until you press the button."
                + (" It cannot be undone." if irreversible else ""),
                request=request,
                form_action=f"{LINK_PREFIX}/{token}",
                button_label="Approve — it cannot be undone" if irreversible else "Approve",
                open_url=self._inbox_url(link.kind, link.call_id),
                irreversible=irreversible,
            )
        )

    async def _use_link(self, token: str) -> Response:
        link = await self._verify(token)
        if isinstance(link, HTMLResponse):
            return link
        if link.action != "approve" or link.kind != FUNCTION_CALL:
            return self._page(
                LinkPage("Nothing to do", "This link does not decide anything.", status_code=400)
            )
        request = await self._request_for(link)
        if request is None:
            return self._page(
                LinkPage("Request not found", "This request no longer exists.", status_code=404)
            )
        if request.completed:
            return self._decided_page(request)
        if isinstance(request, FunctionCall) and not arguments_fit(request):
            await self._refuse(link.kind, link.call_id, f"email:{link.recipient}", _TOO_LONG_REASON)
            return self._too_long_page(request, link)
        try:  # before the link is used up: a recipient the policy refuses keeps nothing
            await self.service.authorize(
                link.kind, link.call_id, f"email:{link.recipient}", via=VIA
            )
        except ForbiddenError:
            return self._page(
                LinkPage(
                    "Not allowed",
                    "You are not allowed to decide this request. Nothing was changed.",
                    status_code=403,
                    request=request,
                )
            )
        if not await self._claim_link(token, link):
            return self._page(
                LinkPage(
                    "Link already used",
                    "This link has already been used; each link works once. Nothing was changed.",
                    status_code=409,
                    request=request,
                )
            )
        try:
            # This POST comes from the confirmation page (GET shows the call and decides
            # nothing): for an irreversible function that page is the deliberate second step.
            decided = await self.service.respond_function_call(
                link.call_id,
                FunctionCallStatus(approved=True, confirmed_irreversible=True),
                responder=f"email:{link.recipient}",
                via=VIA,
            )
        except AlreadyDecidedError as exc:
            return self._page(LinkPage("Already decided", exc.message, status_code=409))
        except ForbiddenError:
            return self._page(
                LinkPage(
                    "Not allowed", "You are not allowed to decide this request.", status_code=403
                )
            )
        except InvalidDecisionError as exc:
            return self._page(LinkPage("Not possible", exc.message, status_code=422))
        except NotFoundError:
            return self._page(
                LinkPage("Request not found", "This request no longer exists.", status_code=404)
            )
        status = decided.status
        if status is not None and status.approved is None:
            approvals = len(status.approvals or [])
            policy = decided.spec.policy
            required = policy.approvals_required if policy is not None else 1
            message = f"Your approval is recorded ({approvals} of {required} needed)."
        else:
            message = "Approved. The agent will now run the call."
        return self._page(LinkPage("Approved", message, request=decided))

    # -- inbound replies ---------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        secret = self.inbound_secret
        assert secret is not None
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if given is None:
            given = request.query_params.get("secret")
        return given is not None and hmac.compare_digest(given.encode(), secret.encode())

    async def _raw_message(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for name in _RAW_FIELDS:
                value = form.get(name)
                if isinstance(value, str):
                    return value.encode("utf-8")
                if value is not None:
                    return await value.read()
            return b""
        return await request.body()

    async def _inbound(self, request: Request) -> JSONResponse:
        def answer(status_code: int, code: str, detail: str, **extra: Any) -> JSONResponse:
            return JSONResponse({"detail": detail, "code": code, **extra}, status_code=status_code)

        if not self.inbound_secret:
            return answer(
                404,
                "not_configured",
                "inbound email is off: set email_inbound_secret to accept replies",
            )
        if not self._authorised(request):
            return answer(
                401,
                "unauthorized",
                f"missing or wrong inbound secret (send it in the {SECRET_HEADER} header)",
            )
        try:
            reply = parse_reply(await self._raw_message(request))
        except InboundError as exc:
            return answer(400, "bad_message", str(exc))
        found = await self._find_request(reply.message_ids)
        if found is None:
            return answer(
                404,
                "no_request",
                "this message is not a reply to a request from this server "
                "(no known Message-ID in In-Reply-To or References)",
            )
        kind, call_id, recipient = found
        if reply.auto_reply:
            await self._refuse(kind, call_id, reply.sender, "automatic reply (not a decision)")
            return answer(200, "ignored", "automatic replies never decide", call_id=call_id)
        # A reply counts only from the recipient of the copy it threads to: another addressee
        # replying on their own copy "as" someone else, or a forged From on someone else's
        # copy, decides nothing. Nor does a reply to a message whose id was once readable.
        if recipient is None:
            reason = (
                "the reply threads to a message sent before reply ids were kept private "
                "(its id may be known to others); answer with the link or in the inbox"
            )
            await self._refuse(kind, call_id, reply.sender, reason)
            return answer(403, "forbidden", reason + "; nothing was decided", call_id=call_id)
        if reply.sender != recipient:
            await self._refuse(
                kind,
                call_id,
                reply.sender,
                "sender is not the recipient of the message replied to",
            )
            return answer(
                403,
                "forbidden",
                "a reply counts only from the address its message was sent to; nothing was decided",
                call_id=call_id,
            )
        if not reply.text.strip():
            await self._refuse(kind, call_id, reply.sender, "empty reply")
            return answer(
                422,
                "empty_reply",
                "the reply has no text above the quoted message",
                call_id=call_id,
            )
        try:
            if kind == FUNCTION_CALL:
                approves, comment = is_approval(reply.text)
                if approves and not arguments_fit(await self.service.get_function_call(call_id)):
                    await self._refuse(kind, call_id, reply.sender, _TOO_LONG_REASON)
                    return answer(
                        422,
                        "arguments_not_shown",
                        "the email could not show every argument, so a reply cannot approve "
                        "the call; nothing was decided (decide in the inbox)",
                        call_id=call_id,
                    )
                decision = (
                    FunctionCallStatus(approved=True, comment=comment)
                    if approves
                    else FunctionCallStatus(approved=False, comment=reply.text)
                )
                call = await self.service.respond_function_call(
                    call_id, decision, responder=f"email:{reply.sender}", via=VIA
                )
                status = call.status
                if status is not None and status.approved is None:
                    outcome = "approval_recorded"
                else:
                    outcome = "approved" if approves else "rejected"
            else:
                await self.service.respond_human_contact(
                    call_id, response=reply.text, responder=f"email:{reply.sender}", via=VIA
                )
                outcome = "responded"
        except AlreadyDecidedError as exc:
            return answer(409, "already_decided", exc.message, call_id=call_id)
        except ForbiddenError as exc:
            return answer(403, "forbidden", exc.message, call_id=call_id)
        except ConfirmationRequiredError as exc:
            await self._refuse(
                kind, call_id, reply.sender, "a reply cannot approve an irreversible function"
            )
            return answer(
                422,
                "confirmation_required",
                exc.message
                + "; a reply cannot confirm it: use the Approve link; nothing was decided",
                call_id=call_id,
            )
        except InvalidDecisionError as exc:
            return answer(422, "invalid_decision", exc.message, call_id=call_id)
        except NotFoundError as exc:
            return answer(404, "not_found", exc.message, call_id=call_id)
        return answer(200, outcome, f"{outcome} by {reply.sender}", call_id=call_id)
