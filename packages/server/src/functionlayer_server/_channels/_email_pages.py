"""Email links (``/email/links/<token>``): the confirmation page a signed link shows on GET and
the decision it makes on POST, once (see ``_email`` for the rules, ``_email_grants`` for the
grant link). Links are verified by ``_email_links``; decisions go through the service."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from functionlayer.models import FunctionCall, FunctionCallStatus

from functionlayer_server._channels._base import ChannelRequest, needs_confirmation
from functionlayer_server._channels._email_links import LinkError, LinkSigner, LinkToken, use_key
from functionlayer_server._channels._email_render import (
    LinkPage,
    arguments_fit,
    describe_decision,
    render_page,
)
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ForbiddenError,
    InvalidDecisionError,
    NotFoundError,
)
from functionlayer_server._service import FUNCTION_CALL, ApprovalService
from functionlayer_server._store._base import AuditRow

__all__ = ["LINK_PREFIX", "PAGE_HEADERS", "TOO_LONG_REASON", "VIA", "LinkPages", "refuse_answer"]

VIA = "email"
LINK_PREFIX = "/email/links"
PAGE_HEADERS = {
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


TOO_LONG_REASON = "the email could not show every argument, so it cannot approve"


async def refuse_answer(
    service: ApprovalService, kind: str, call_id: str, who: str, reason: str
) -> None:
    """Audit an email answer that decided nothing."""
    await service.record_audit(
        kind, call_id, who=who, via=VIA, action="answer_refused", details={"reason": reason}
    )


class LinkPages:
    def __init__(self, service: ApprovalService, signer: LinkSigner, base_url: str) -> None:
        self.service = service
        self.signer = signer
        self.base_url = base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    def inbox_url(self, kind: str, call_id: str) -> str:
        section = "calls" if kind == FUNCTION_CALL else "contacts"
        return self.url(f"/inbox/{section}/{quote(call_id, safe='')}")

    async def link_used(self, token: str) -> bool:
        return await self.service.store.recall(use_key(token)) is not None

    async def claim_link(self, token: str, link: LinkToken) -> bool:
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

    # -- links ------------------------------------------------------------------------------

    def page(self, page: LinkPage) -> HTMLResponse:
        return HTMLResponse(
            render_page(page), status_code=page.status_code, headers=dict(PAGE_HEADERS)
        )

    async def request_for(self, link: LinkToken) -> ChannelRequest | None:
        try:
            if link.kind == FUNCTION_CALL:
                return await self.service.get_function_call(link.call_id)
            return await self.service.get_human_contact(link.call_id)
        except NotFoundError:
            return None

    async def verify(self, token: str) -> LinkToken | HTMLResponse:
        try:
            return self.signer.verify(token, now=self.service.clock.now())
        except LinkError as exc:
            title = "Link expired" if exc.expired else "Link not valid"
            return self.page(
                LinkPage(title=title, message=exc.reason, status_code=410 if exc.expired else 400)
            )

    def used_page(self, request: ChannelRequest) -> HTMLResponse:
        return self.page(
            LinkPage(
                "Link already used",
                "This link has already been used; each link works once. Nothing was changed.",
                status_code=409,
                request=request,
            )
        )

    def decided_page(self, request: ChannelRequest) -> HTMLResponse:
        return self.page(
            LinkPage(
                title="Already decided",
                message=describe_decision(request) + " Nothing was changed.",
                status_code=409,
                request=request,
            )
        )

    def too_long_page(self, request: FunctionCall, link: LinkToken) -> HTMLResponse:
        return self.page(
            LinkPage(
                "Open it in the inbox",
                "The arguments are too long to show in an email, so an email link cannot "
                "approve this call. Nothing was changed.",
                status_code=422,
                open_url=self.inbox_url(link.kind, link.call_id),
            )
        )

    async def show(self, token: str) -> Response:
        link = await self.verify(token)
        if isinstance(link, HTMLResponse):
            return link
        if link.action == "open":
            return RedirectResponse(
                self.inbox_url(link.kind, link.call_id),
                status_code=303,
                headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
            )
        request = await self.request_for(link)
        if request is None:
            return self.page(
                LinkPage("Request not found", "This request no longer exists.", status_code=404)
            )
        if await self.link_used(token):
            return self.used_page(request)
        if request.completed:
            return self.decided_page(request)
        if isinstance(request, FunctionCall) and not arguments_fit(request):
            return self.too_long_page(request, link)
        irreversible = await needs_confirmation(self.service, request)
        return self.page(
            LinkPage(
                title="Approve this irreversible call?" if irreversible else "Approve this call?",
                message=f"You are approving as {link.recipient}. Nothing happens until you press the button."
                + (" It cannot be undone." if irreversible else ""),
                request=request,
                form_action=f"{LINK_PREFIX}/{token}",
                button_label="Approve — it cannot be undone" if irreversible else "Approve",
                open_url=self.inbox_url(link.kind, link.call_id),
                irreversible=irreversible,
            )
        )

    async def use(self, token: str) -> Response:
        link = await self.verify(token)
        if isinstance(link, HTMLResponse):
            return link
        if link.action != "approve" or link.kind != FUNCTION_CALL:
            return self.page(
                LinkPage("Nothing to do", "This link does not decide anything.", status_code=400)
            )
        request = await self.request_for(link)
        if request is None:
            return self.page(
                LinkPage("Request not found", "This request no longer exists.", status_code=404)
            )
        if request.completed:
            return self.decided_page(request)
        if isinstance(request, FunctionCall) and not arguments_fit(request):
            await refuse_answer(
                self.service, link.kind, link.call_id, f"email:{link.recipient}", TOO_LONG_REASON
            )
            return self.too_long_page(request, link)
        try:  # before the link is used up: a recipient the policy refuses keeps nothing
            await self.service.authorize(
                link.kind, link.call_id, f"email:{link.recipient}", via=VIA
            )
        except ForbiddenError:
            return self.page(
                LinkPage(
                    "Not allowed",
                    "You are not allowed to decide this request. Nothing was changed.",
                    status_code=403,
                    request=request,
                )
            )
        if not await self.claim_link(token, link):
            return self.used_page(request)
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
            return self.page(LinkPage("Already decided", exc.message, status_code=409))
        except ForbiddenError:
            return self.page(
                LinkPage(
                    "Not allowed", "You are not allowed to decide this request.", status_code=403
                )
            )
        except InvalidDecisionError as exc:
            return self.page(LinkPage("Not possible", exc.message, status_code=422))
        except NotFoundError:
            return self.page(
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
        return self.page(LinkPage("Approved", message, request=decided))
