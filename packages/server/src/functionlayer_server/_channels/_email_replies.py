"""Email replies (``POST /email/inbound``, the raw MIME message, authenticated with
``email_inbound_secret``): matched to the copy they answer by its private Message-ID (see
``_email``), accepted only from that copy's recipient, parsed by ``_email_inbound``, and
decided through the service with ``via="email"``; refusals are audited and decide nothing."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from functionlayer.models import FunctionCallStatus

from functionlayer_server._channels._email_inbound import InboundError, is_approval, parse_reply
from functionlayer_server._channels._email_pages import TOO_LONG_REASON, VIA, refuse_answer
from functionlayer_server._channels._email_render import arguments_fit
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
)
from functionlayer_server._service import FUNCTION_CALL, ApprovalService

__all__ = ["LEGACY_MSGID_KEY", "SECRET_HEADER", "ReplyInbox", "reply_key"]

SECRET_HEADER = "X-FunctionLayer-Inbound-Secret"
LEGACY_MSGID_KEY = "email-msgid:"
"""Reply mapping of messages sent while their ids were also in the (agent-readable) audit."""
_REPLY_KEY = "email-reply:v2:"
"""Reply mapping: the hash of a private Message-ID -> the request and that copy's recipient."""
# Form fields in which inbound-mail services post the raw message (Mailgun, SendGrid, ...).
_RAW_FIELDS = ("body-mime", "email", "raw", "mime", "message")


def reply_key(msgid: str) -> str:
    """The durable key of a Message-ID's reply mapping (its hash, not the id)."""
    return _REPLY_KEY + hashlib.sha256(msgid.encode("utf-8")).hexdigest()


class ReplyInbox:
    def __init__(self, service: ApprovalService, inbound_secret: str | None) -> None:
        self.service = service
        self.inbound_secret = inbound_secret

    async def _find_request(self, message_ids: list[str]) -> tuple[str, str, str | None] | None:
        """(kind, call id, the recipient of the copy replied to) for the first known
        Message-ID. The recipient is None when the id cannot prove whose copy it was: a
        message sent before ids were private (its id was in the agent-readable audit)."""
        for msgid in message_ids:
            found = await self.service.store.recall(reply_key(msgid))
            if found is not None:
                return str(found["kind"]), str(found["call_id"]), str(found["recipient"])
        for msgid in message_ids:
            legacy = await self.service.store.recall(LEGACY_MSGID_KEY + msgid)
            if legacy is not None:
                return str(legacy["kind"]), str(legacy["call_id"]), None
        return None

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

    async def receive(self, request: Request) -> JSONResponse:
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
            await refuse_answer(
                self.service, kind, call_id, reply.sender, "automatic reply (not a decision)"
            )
            return answer(200, "ignored", "automatic replies never decide", call_id=call_id)
        # A reply counts only from the recipient of the copy it threads to: another addressee
        # replying on their own copy "as" someone else, or a forged From on someone else's
        # copy, decides nothing. Nor does a reply to a message whose id was once readable.
        if recipient is None:
            reason = (
                "the reply threads to a message sent before reply ids were kept private "
                "(its id may be known to others); answer with the link or in the inbox"
            )
            await refuse_answer(self.service, kind, call_id, reply.sender, reason)
            return answer(403, "forbidden", reason + "; nothing was decided", call_id=call_id)
        if reply.sender != recipient:
            await refuse_answer(
                self.service,
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
            await refuse_answer(self.service, kind, call_id, reply.sender, "empty reply")
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
                    await refuse_answer(self.service, kind, call_id, reply.sender, TOO_LONG_REASON)
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
            await refuse_answer(
                self.service,
                kind,
                call_id,
                reply.sender,
                "a reply cannot approve an irreversible function",
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
