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
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from functionlayer.models import (
    ContactChannel,
    FunctionCall,
)

from functionlayer_server._channels._base import ChannelRequest, DeliveryStore, needs_confirmation
from functionlayer_server._channels._core import ChannelCore
from functionlayer_server._channels._email_grants import EmailGrants
from functionlayer_server._channels._email_links import Action, LinkSigner, LinkToken
from functionlayer_server._channels._email_pages import (
    LINK_PREFIX,
    VIA,
    LinkPages,
)
from functionlayer_server._channels._email_render import (
    arguments_fit,
    one_line,
    render_decision,
    render_request,
)
from functionlayer_server._channels._email_replies import SECRET_HEADER, ReplyInbox, reply_key
from functionlayer_server._channels._grant_offer import grant_offered
from functionlayer_server._channels._planning import request_kind
from functionlayer_server._schema import allowed
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings

__all__ = ["INBOUND_PATH", "LINK_PREFIX", "SECRET_HEADER", "EmailChannel", "create_channel"]

INBOUND_PATH = "/email/inbound"
SMTP_TIMEOUT_SECONDS = 30.0


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


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> EmailChannel | None:
    """The email channel, or None while ``smtp_host`` is not configured."""
    if not getattr(settings, "smtp_host", None):
        return None
    return EmailChannel(service, settings, deliveries)


class EmailChannel(ChannelCore):
    name = VIA

    def prepare(self) -> None:
        settings = self.settings
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
        self.pages = LinkPages(self.service, self.signer, settings.base_url)
        self.replies = ReplyInbox(self.service, self.inbound_secret)
        self.grants = EmailGrants(self.pages)

    # -- Channel protocol -------------------------------------------------------------------

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

    async def _grant_link(self, token: str) -> bool:
        link = await self.pages.verify(token)
        return isinstance(link, LinkToken) and link.action == "grant"

    def _link(
        self, action: Action, kind: str, call_id: str, recipient: str, expires_at: float
    ) -> str:
        """A signed link for ``recipient``'s copy (``_email_links``)."""
        token = self.signer.sign(
            kind=kind, call_id=call_id, action=action, recipient=recipient, expires_at=expires_at
        )
        return self.pages.url(f"{LINK_PREFIX}/{token}")

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        channel = target.email
        if channel is None:
            raise ValueError("not an email target")
        kind = request_kind(request)
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
        irreversible = await needs_confirmation(self.service, request)
        approvable = (
            isinstance(request, FunctionCall)
            and "approve" in allowed(request.spec)
            and arguments_fit(request)
        )
        grantable = (
            approvable
            and not irreversible
            and isinstance(request, FunctionCall)
            and await grant_offered(
                self.service, request, await self.service.get_project(kind, request.call_id)
            )
        )
        message_ids: dict[str, str] = {}
        batch: list[tuple[EmailMessage, list[str]]] = []
        subject = ""
        for recipient in recipients:
            sign = (kind, request.call_id, recipient, expires_at)
            content = render_request(
                request,
                subject=channel.subject,
                context=context,
                approve_url=self._link("approve", *sign) if approvable else None,
                grant_url=self._link("grant", *sign) if grantable else None,
                open_url=self._link("open", *sign),
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
        kind = request_kind(request)
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
            if await self._grant_link(token):
                return await self.grants.show(token)
            return await self.pages.show(token)

        @router.post(LINK_PREFIX + "/{token}")
        async def use_link(token: str, request: Request) -> Response:
            if await self._grant_link(token):
                return await self.grants.use(token, await request.form())
            return await self.pages.use(token)

        @router.post(INBOUND_PATH)
        async def inbound(request: Request) -> Response:
            return await self.replies.receive(request)

        return router

    # -- durable records (the server's key-value table) --------------------------------------

    async def _remember_message_ids(self, kind: str, call_id: str, ids: dict[str, str]) -> None:
        """Message-ID -> request and the one recipient of that copy, written before sending:
        a reply (even an instant one) can always be matched to whose copy it answers. Keyed
        by the id's hash: the id itself is kept nowhere but in the recipient's copy."""
        for recipient, msgid in ids.items():
            await self.service.store.remember(
                reply_key(msgid.strip("<>")),
                {"kind": kind, "call_id": call_id, "recipient": recipient.lower()},
            )
