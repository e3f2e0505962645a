"""Routes of the web inbox (mounted under ``/inbox``)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from functionlayer.models import FunctionCall, FunctionCallStatus, HumanContact

from .. import _schema
from .._accounts import LoginThrottled
from .._audit_view import visible_details
from .._errors import (
    AlreadyDecidedError,
    ConfirmationRequiredError,
    InvalidDecisionError,
    NotFoundError,
    ServerError,
)
from .._service import FUNCTION_CALL, HUMAN_CONTACT
from . import _views as views
from ._grant_pages import add_grant_routes
from ._session import COOKIE_NAME, DEVICE_COOKIE_NAME, DeviceCodec, Session, SessionCodec

__all__ = ["create_inbox_router"]

PREFIX = "/inbox"
VIA = "web"
RECENT_LIMIT = 20
STATE_PREFIX = "/inbox/state/calls/"
PAGE_SIZE = 50


def _page(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page") or 1))
    except ValueError:
        return 1


LONG_POLL_SECONDS = 25.0
MAX_TEXT = 20_000  # characters of feedback / answer / edited JSON accepted from a form

# No inline script or style at all: LLM-written text can never become code on these pages.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {
    "inbox.css": "text/css; charset=utf-8",
    "inbox.js": "text/javascript; charset=utf-8",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("functionlayer_server._inbox", "templates"),
        autoescape=True,  # on for every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["option_label"] = views.option_label
    return env


def _load_static() -> dict[str, tuple[bytes, str]]:
    """Static files by name: (content, short content hash for cache busting)."""
    files = resources.files("functionlayer_server._inbox") / "static"
    loaded: dict[str, tuple[bytes, str]] = {}
    for name in STATIC_TYPES:
        data = (files / name).read_bytes()
        loaded[name] = (data, hashlib.sha256(data).hexdigest()[:12])
    return loaded


def _safe_next(target: str | None) -> str:
    """Only same-site inbox paths after login: no open redirect."""
    if not target or not target.startswith(PREFIX) or target.startswith("//"):
        return PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return PREFIX
    return target


def create_inbox_router(service: Any, settings: Any) -> APIRouter:
    """Return the inbox router: pages under ``/inbox``, decisions recorded via ``service``."""
    router = APIRouter(include_in_schema=False)
    env = _environment()
    static = _load_static()
    secret = getattr(settings, "secret_key", None)
    public_url = str(getattr(settings, "public_url", "") or "")
    secure_cookie = public_url.startswith("https://")
    codec_cache: dict[str, SessionCodec] = {}

    def codec() -> SessionCodec:
        # The secret may be generated and persisted by the app's lifespan after the router is
        # built, so read it when the first request arrives rather than at construction.
        key = str(getattr(settings, "secret_key", None) or secret or "")
        if key not in codec_cache:
            codec_cache.clear()
            codec_cache[key] = SessionCodec(key)
        return codec_cache[key]

    device_codecs: dict[str, DeviceCodec] = {}

    def device_codec() -> DeviceCodec:
        key = str(getattr(settings, "secret_key", None) or secret or "")
        if key not in device_codecs:
            device_codecs.clear()
            device_codecs[key] = DeviceCodec(key)
        return device_codecs[key]

    def static_url(name: str) -> str:
        return f"{PREFIX}/static/{name}?v={static[name][1]}"

    env.globals["static_url"] = static_url

    # -- responses ---------------------------------------------------------------------------

    def set_session(response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            codec().dumps(session),
            max_age=codec().max_age,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=secure_cookie,
        )

    def secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    def render(
        template: str,
        context: Mapping[str, Any],
        *,
        status_code: int = 200,
        session: Session | None = None,
        new_cookie: bool = False,
    ) -> Response:
        html = env.get_template(template).render(**context)
        response = HTMLResponse(html, status_code=status_code)
        if session is not None and new_cookie:
            set_session(response, session)
        return secure(response)

    def redirect(url: str) -> Response:
        return secure(RedirectResponse(url, status_code=303))

    def error_page(
        session: Session | None, user: Any, status_code: int, title: str, message: str
    ) -> Response:
        return render(
            "error.html",
            {
                "user": user,
                "csrf": session.csrf if session else "",
                "title": title,
                "message": message,
            },
            status_code=status_code,
        )

    def not_found(session: Session, user: Any) -> Response:
        return error_page(
            session, user, 404, "Not found", "There is no request with that id that you may see."
        )

    # -- session, login and CSRF -------------------------------------------------------------

    def read_session(request: Request) -> Session | None:
        return codec().loads(request.cookies.get(COOKIE_NAME))

    async def current_user(request: Request) -> tuple[Session | None, Any]:
        session = read_session(request)
        if session is None or session.sid is None:
            return session, None
        person = await service.accounts.session_person(session.sid)
        return session, person

    def login_redirect(request: Request) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return redirect(f"{PREFIX}/login?next={quote(target, safe='')}")

    def cross_site(request: Request) -> bool:
        # Browsers send these on POST; a value naming another site is refused even before the
        # token is checked. The token below is the real protection.
        if request.headers.get("sec-fetch-site", "") == "cross-site":
            return True
        origin = request.headers.get("origin")
        if origin is None:
            return False
        allowed = {request.headers.get("host", "")}
        if public_url:
            allowed.add(urlsplit(public_url).netloc)  # behind a proxy that rewrites Host
        return urlsplit(origin).netloc not in allowed

    def csrf_ok(request: Request, session: Session | None, form: Mapping[str, Any]) -> bool:
        if session is None or cross_site(request):
            return False
        token = form.get("csrf_token")
        if not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(token.encode(), session.csrf.encode())

    def csrf_refused(session: Session | None, user: Any) -> Response:
        return error_page(
            session,
            user,
            403,
            "Form refused",
            "This form was refused because its security token was missing or wrong, or it was "
            "sent from another site. Go back, reload the page and try again.",
        )

    @router.get(PREFIX + "/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        session, user = await current_user(request)
        if user is not None:
            return redirect(_safe_next(next))
        fresh = session is None
        if session is None:
            session = Session.fresh()
        return render(
            "login.html",
            {"user": None, "csrf": session.csrf, "next": _safe_next(next), "error": None},
            session=session,
            new_cookie=fresh,
        )

    @router.post(PREFIX + "/login")
    async def login_submit(request: Request) -> Response:
        session = read_session(request)
        form = await request.form()
        if not csrf_ok(request, session, form):
            return csrf_refused(session, None)
        assert session is not None
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        next_url = _safe_next(str(form.get("next") or ""))
        user = None
        address = request.client.host if request.client else "unknown"
        # A browser that logged in as this person before: guesses made elsewhere do not
        # lock it out (see LoginThrottle).
        known = device_codec().loads(request.cookies.get(DEVICE_COOKIE_NAME))
        device = known[1] if known and known[0].lower() == username.lower() else None
        if username and password:
            try:
                user = await service.accounts.login(username, password, address, device=device)
            except LoginThrottled as exc:
                response = render(
                    "login.html",
                    {
                        "user": None,
                        "csrf": session.csrf,
                        "next": next_url,
                        "error": f"Too many failed attempts. Try again in {exc.retry_after} seconds.",
                        "username": username,
                    },
                    status_code=429,
                )
                response.headers["Retry-After"] = str(exc.retry_after)
                return response
        if user is None:
            return render(
                "login.html",
                {
                    "user": None,
                    "csrf": session.csrf,
                    "next": next_url,
                    "error": "Wrong username or password.",
                    "username": username,
                },
                status_code=401,
            )
        response = redirect(next_url)
        started = await service.accounts.start_session(user.name, codec().max_age)
        set_session(response, Session.fresh(started.session_id))
        response.set_cookie(
            DEVICE_COOKIE_NAME,
            device_codec().dumps(user.name, known[1] if known else None),
            max_age=device_codec().max_age,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=secure_cookie,
        )
        return response

    @router.post(PREFIX + "/logout")
    async def logout(request: Request) -> Response:
        session, user = await current_user(request)
        form = await request.form()
        if not csrf_ok(request, session, form):
            return csrf_refused(session, user)
        if user is not None:
            # Ends every session of this person: a copied cookie stops working too.
            await service.accounts.end_sessions(user.name)
        response = redirect(f"{PREFIX}/login")
        response.delete_cookie(COOKIE_NAME, path=PREFIX)
        return response

    # -- static ------------------------------------------------------------------------------

    @router.get(PREFIX + "/static/{name}")
    async def static_file(name: str) -> Response:
        if name not in static:
            return Response("not found", status_code=404, media_type="text/plain")
        response = Response(static[name][0], media_type=STATIC_TYPES[name])
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # -- the list ----------------------------------------------------------------------------

    async def list_context(user: Any, page: int = 1) -> dict[str, Any]:
        now = views.now_utc()
        (
            pending_calls,
            pending_contacts,
            (done_calls, _),
            (done_contacts, _),
        ) = await asyncio.gather(
            # Every pending request this person may decide, in one pass each (paged below,
            # never silently capped; bounded by the agent tokens' pending quotas).
            service.inbox_pending(FUNCTION_CALL, user),
            service.inbox_pending(HUMAN_CONTACT, user),
            service.inbox_page(FUNCTION_CALL, user, pending=False, limit=RECENT_LIMIT),
            service.inbox_page(HUMAN_CONTACT, user, pending=False, limit=RECENT_LIMIT),
        )
        pending = [views.row_for_call(c, now) for c in pending_calls] + [
            views.row_for_contact(c, now) for c in pending_contacts
        ]
        # Longest-waiting first: that is the one most likely holding an agent up.
        pending.sort(key=lambda row: (row.requested_at is None, row.requested_at or now))
        total = len(pending)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        decided = [views.row_for_call(c, now) for c in done_calls] + [
            views.row_for_contact(c, now) for c in done_contacts
        ]
        decided.sort(key=lambda row: row.decided_at or row.requested_at or now, reverse=True)
        shown = pending[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        await label_requesters([*shown, *decided[:RECENT_LIMIT]], user)
        return {
            "pending": shown,
            "pending_total": total,
            "page": page,
            "pages": pages,
            "decided": decided[:RECENT_LIMIT],
        }

    async def label_requesters(rows: list[views.RequestRow], user: Any) -> None:
        """Each row's requesting agent token and project (read from the stored records)."""
        origins = await asyncio.gather(
            *(
                service.requested_by(
                    FUNCTION_CALL if row.kind == "call" else HUMAN_CONTACT,
                    row.call_id,
                    among=user.projects,
                )
                for row in rows
            )
        )
        for row, origin in zip(rows, origins, strict=True):
            row.requested_by = views.requester_label(origin)

    async def current_version() -> int:
        return int(await service.wait_for_change(-1, 0))

    @router.get(PREFIX)
    @router.get(PREFIX + "/")
    async def inbox_list(request: Request) -> Response:
        session, user = await current_user(request)
        if user is None or session is None:
            return login_redirect(request)
        # Read the counter before the lists: a change in between triggers one more refresh.
        version = await current_version()
        context = await list_context(user, _page(request))
        return render(
            "list.html", {"user": user, "csrf": session.csrf, "version": version, **context}
        )

    @router.get(PREFIX + "/fragment")
    async def inbox_fragment(request: Request) -> Response:
        _session, user = await current_user(request)
        if user is None:
            return secure(JSONResponse({"detail": "login required"}, status_code=401))
        return render("_rows.html", await list_context(user, _page(request)))

    @router.get(PREFIX + "/changes")
    async def inbox_changes(request: Request, since: int = -1) -> Response:
        """Long-poll: answers as soon as anything changed after ``since``, or after ~25 s."""
        _session, user = await current_user(request)
        if user is None:
            return secure(JSONResponse({"detail": "login required"}, status_code=401))
        cap = float(getattr(settings, "long_poll_max_seconds", LONG_POLL_SECONDS) or 0)
        timeout = min(LONG_POLL_SECONDS, cap) if cap > 0 else LONG_POLL_SECONDS
        version = await service.wait_for_change(since, timeout)
        return secure(JSONResponse({"version": int(version)}))

    # -- function calls ----------------------------------------------------------------------

    async def visible_call(call_id: str, user: Any) -> FunctionCall | None:
        try:
            # Call ids are unique per project only: looked up in the person's projects.
            call: FunctionCall = await service.get_function_call(call_id, among=user.projects)
        except NotFoundError:
            return None
        project = await service.get_project(FUNCTION_CALL, call_id, among=user.projects)
        if project is None or not await service.may_see(call, user, project):
            return None
        return call

    async def audit(kind: str, call_id: str, user: Any) -> list[views.AuditRow]:
        project = await service.get_project(kind, call_id, among=user.projects)
        entries = await service.audit_trail(call_id, project=project) if project else []
        rows = []
        for entry in entries:
            details: Any = getattr(entry, "details", None)
            if details is not None and not isinstance(details, str):
                details = visible_details(details)
            when = getattr(entry, "at", None) or getattr(entry, "when", None)
            rows.append(
                views.audit_row(
                    views.format_time(when) if when is not None else "",
                    getattr(entry, "who", None) or "",
                    getattr(entry, "via", None) or "",
                    getattr(entry, "action", None) or "",
                    details,
                )
            )
        return rows

    async def presence(kind: str, call_id: str, now: Any, user: Any) -> str:
        """Whether the agent is still waiting for this answer, in words for the page."""
        project = await service.get_project(kind, call_id, among=user.projects)
        state, seen = (
            await service.agent_presence(kind, call_id, project) if project else ("unknown", None)
        )
        if state == "waiting":
            return "waiting for your answer now"
        if state == "unknown":
            return "has not checked for an answer yet"
        from datetime import UTC, datetime

        ago = views.since(datetime.fromtimestamp(seen or 0, UTC), now)
        if state == "left":
            return (
                f"stopped waiting {ago} ago (its connection closed); your decision is kept "
                "and used if it comes back"
            )
        return (
            f"last checked {ago} ago and may have stopped waiting; your decision is kept and "
            "used if it comes back"
        )

    async def render_call(
        call: FunctionCall,
        session: Session,
        user: Any,
        *,
        error: str | None = None,
        notice: str | None = None,
        status_code: int = 200,
        form: Mapping[str, str] | None = None,
        field_errors: Mapping[str, str] | None = None,
        confirm: bool = False,
    ) -> Response:
        now = views.now_utc()
        status = call.status
        project = await service.get_project(FUNCTION_CALL, call.call_id, among=user.projects)
        irreversible = bool(project) and await service.irreversible(call, project)
        origin = await service.requested_by(FUNCTION_CALL, call.call_id, among=user.projects)
        requested = status.requested_at if status else None
        expires = status.expires_at if status else None
        outcome = views.call_outcome(call)
        values = dict(form or {})
        spec = call.spec
        editing = values if values.get("action") == "edit" else None
        return render(
            "call.html",
            {
                "user": user,
                "csrf": session.csrf,
                "call": call,
                "spec": call.spec,
                "row": views.row_for_call(call, now),
                "outcome": outcome,
                "kwargs_json": views.pretty_json(call.spec.kwargs),
                "arguments": views.arguments_view(spec.kwargs, spec.parameters, spec.description),
                "edit_fields": views.edit_fields(
                    spec.kwargs, spec.parameters, editing, field_errors
                ),
                "form_error": (field_errors or {}).get("", ""),
                "allowed": _schema.allowed(spec),
                "edited_text": values.get("edited_kwargs", views.pretty_json(call.spec.kwargs)),
                "feedback_text": values.get("feedback", ""),
                "response_text": values.get("response", ""),
                "open_section": values.get("action", ""),
                "requested_at": views.format_time(requested),
                "waiting": views.since(requested, now),
                "agent": await presence(FUNCTION_CALL, call.call_id, now, user),
                "expires_at": views.format_time(expires),
                "expires_in": views.row_for_call(call, now).expires_in,
                "channel": views.channel_context(call.spec.channel, call.spec.policy),
                "audit": await audit(FUNCTION_CALL, call.call_id, user),
                "error": error,
                "notice": notice,
                "approvals_required": call.spec.policy.approvals_required
                if call.spec.policy
                else 1,
                "context": views.context_view(spec.context),
                "irreversible": irreversible,
                "confirm": confirm and irreversible,
                "confirm_fields": [
                    (k, v) for k, v in values.items() if k not in ("confirmed_irreversible",)
                ],
                "requested_by": views.requester_label(origin),
                "watch_state": views.watch_state(outcome),
                "state_url": STATE_PREFIX + quote(call.call_id, safe=""),
            },
            status_code=status_code,
        )

    @router.get(PREFIX + "/calls/{call_id:path}")
    async def call_detail(request: Request, call_id: str, decided: str | None = None) -> Response:
        session, user = await current_user(request)
        if user is None or session is None:
            return login_redirect(request)
        call = await visible_call(call_id, user)
        if call is None:
            return not_found(session, user)
        notice = "Your decision was recorded." if decided else None
        return await render_call(call, session, user, notice=notice)

    def _text(form: Mapping[str, Any], name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    async def decision_from_form(
        call: FunctionCall, form: Mapping[str, Any]
    ) -> tuple[FunctionCallStatus | None, str | None, dict[str, str]]:
        """The decision a submitted form asks for, or an error message for the page (and, for
        an invalid edit, what is wrong with each argument, shown next to its field)."""
        decision, problem = _decision_from_form(call, form)
        if decision is None or decision.edited_kwargs is None:
            return decision, problem, {}
        merged = _schema.merge_edits(call.spec, decision.edited_kwargs)
        problems = await _schema.edit_problems_off_loop(call.spec, merged)
        if problems:
            return None, "Nothing was recorded: " + _schema.describe(problems) + ".", problems
        return decision, problem, {}

    def _decision_from_form(
        call: FunctionCall, form: Mapping[str, Any]
    ) -> tuple[FunctionCallStatus | None, str | None]:
        action = _text(form, "action")
        if action and action in _schema.DECISION_KINDS and action not in _schema.allowed(call.spec):
            return None, f"{call.spec.fn} does not accept the decision {action!r}."
        too_long = [k for k, v in form.items() if isinstance(v, str) and len(v) > MAX_TEXT]
        for name in too_long:
            if name.startswith(views.FIELD_PREFIX):
                return None, f"The argument {name[len(views.FIELD_PREFIX) :]!r} is too long."
        for name in ("feedback", "response", "edited_kwargs", "comment"):
            if len(_text(form, name)) > MAX_TEXT:
                return (
                    None,
                    f"The {name.replace('_', ' ')} is too long (over {MAX_TEXT} characters).",
                )
        confirmed = _text(form, "confirmed_irreversible") in ("1", "true", "yes")
        if action == "approve":
            return FunctionCallStatus(
                approved=True,
                comment=_text(form, "comment") or None,
                confirmed_irreversible=confirmed or None,
            ), None
        if action == "reject":
            feedback = _text(form, "feedback")
            option_name = _text(form, "reject_option_name") or None
            options = {o.name: o for o in call.spec.reject_options or []}
            if option_name is not None and option_name not in options:
                return None, "That reject option does not exist for this request."
            if not feedback and option_name is None:
                return None, "Write the feedback for the agent: it is required to reject."
            # A picked option without text is filled by the policy, as in every channel.
            return (
                FunctionCallStatus(
                    approved=False, comment=feedback or None, reject_option_name=option_name
                ),
                None,
            )
        if action == "edit" and views.edit_fields(call.spec.kwargs, call.spec.parameters):
            edits, problems = views.edits_from_form(call.spec.kwargs, call.spec.parameters, form)
            if problems:
                return None, "Nothing was recorded: " + _schema.describe(problems) + "."
            merged = _schema.merge_edits(call.spec, edits)
            if merged == call.spec.kwargs:
                return FunctionCallStatus(
                    approved=True, confirmed_irreversible=confirmed or None
                ), None
            return FunctionCallStatus(
                approved=True, edited_kwargs=merged, confirmed_irreversible=confirmed or None
            ), None
        if action == "edit":
            raw = _text(form, "edited_kwargs")
            try:
                edited = json.loads(raw)
            except ValueError as exc:
                return None, f"The edited arguments are not valid JSON: {exc}."
            if not isinstance(edited, dict):
                return None, (
                    "The edited arguments must be a JSON object of argument names to values, "
                    'like {"x": 1}.'
                )
            if edited == call.spec.kwargs:
                # Nothing changed: a plain approval, so the agent is not told of phantom edits.
                return FunctionCallStatus(
                    approved=True,
                    comment=_text(form, "comment") or None,
                    confirmed_irreversible=confirmed or None,
                ), None
            return (
                FunctionCallStatus(
                    approved=True,
                    edited_kwargs=edited,
                    comment=_text(form, "comment") or None,
                    confirmed_irreversible=confirmed or None,
                ),
                None,
            )
        if action == "respond":
            text = _text(form, "response")
            if not text:
                return None, "Write the answer the agent should receive instead."
            return FunctionCallStatus(approved=False, response=text), None
        return None, "Unknown action."

    @router.post(PREFIX + "/calls/{call_id:path}")
    async def call_decide(request: Request, call_id: str) -> Response:
        session, user = await current_user(request)
        form = await request.form()
        if not csrf_ok(request, session, form):
            return csrf_refused(session, user)
        if user is None or session is None:
            return login_redirect(request)
        call = await visible_call(call_id, user)
        if call is None:
            return not_found(session, user)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        decision, problem, field_errors = await decision_from_form(call, form)
        if decision is None and not field_errors and _text(form, "action") == "edit":
            _, field_errors = views.edits_from_form(call.spec.kwargs, call.spec.parameters, form)
        if decision is None:
            return await render_call(
                call,
                session,
                user,
                error=problem,
                status_code=422,
                form=values,
                field_errors=field_errors,
            )
        try:
            await service.respond_function_call(
                call_id, decision, responder=f"user:{user.name}", via=VIA
            )
        except NotFoundError:
            return not_found(session, user)
        except AlreadyDecidedError as exc:
            fresh = await visible_call(call_id, user) or call
            return await render_call(
                fresh,
                session,
                user,
                error=f"Nothing was changed: this request was already decided. ({exc})",
                status_code=409,
            )
        except ConfirmationRequiredError:
            # The second, deliberate step: nothing was recorded; the page asks to confirm.
            return await render_call(call, session, user, form=values, confirm=True)
        except (InvalidDecisionError, ServerError) as exc:
            code = exc.status_code if 400 <= exc.status_code < 500 else 422
            return await render_call(
                call, session, user, error=f"Not accepted: {exc}", status_code=code, form=values
            )
        return redirect(views.call_url(call_id) + "?decided=1")

    @router.get(STATE_PREFIX + "{call_id:path}")
    async def call_state(request: Request, call_id: str) -> Response:
        """What the detail page watches (outcome, quorum, execution), as a small JSON."""
        _session, user = await current_user(request)
        if user is None:
            return secure(JSONResponse({"detail": "login required"}, status_code=401))
        call = await visible_call(call_id, user)
        if call is None:
            return secure(JSONResponse({"detail": "not found"}, status_code=404))
        return secure(JSONResponse({"state": views.watch_state(views.call_outcome(call))}))

    # -- human contacts ----------------------------------------------------------------------

    async def visible_contact(call_id: str, user: Any) -> HumanContact | None:
        try:
            contact: HumanContact = await service.get_human_contact(call_id, among=user.projects)
        except NotFoundError:
            return None
        project = await service.get_project(HUMAN_CONTACT, call_id, among=user.projects)
        if project is None or not await service.may_see(contact, user, project):
            return None
        return contact

    async def render_contact(
        contact: HumanContact,
        session: Session,
        user: Any,
        *,
        error: str | None = None,
        notice: str | None = None,
        status_code: int = 200,
        form: Mapping[str, str] | None = None,
    ) -> Response:
        now = views.now_utc()
        status = contact.status
        requested = status.requested_at if status else None
        expires = status.expires_at if status else None
        row = views.row_for_contact(contact, now)
        return render(
            "contact.html",
            {
                "user": user,
                "csrf": session.csrf,
                "contact": contact,
                "spec": contact.spec,
                "row": row,
                "outcome": views.contact_outcome(contact),
                "answer_text": (form or {}).get("response", ""),
                "requested_at": views.format_time(requested),
                "waiting": views.since(requested, now),
                "agent": await presence(HUMAN_CONTACT, contact.call_id, now, user),
                "expires_at": views.format_time(expires),
                "expires_in": row.expires_in,
                "channel": views.channel_context(contact.spec.channel, contact.spec.policy),
                "audit": await audit(HUMAN_CONTACT, contact.call_id, user),
                "error": error,
                "notice": notice,
            },
            status_code=status_code,
        )

    @router.get(PREFIX + "/contacts/{call_id:path}")
    async def contact_detail(
        request: Request, call_id: str, decided: str | None = None
    ) -> Response:
        session, user = await current_user(request)
        if user is None or session is None:
            return login_redirect(request)
        contact = await visible_contact(call_id, user)
        if contact is None:
            return not_found(session, user)
        notice = "Your answer was recorded." if decided else None
        return await render_contact(contact, session, user, notice=notice)

    @router.post(PREFIX + "/contacts/{call_id:path}")
    async def contact_answer(request: Request, call_id: str) -> Response:
        session, user = await current_user(request)
        form = await request.form()
        if not csrf_ok(request, session, form):
            return csrf_refused(session, user)
        if user is None or session is None:
            return login_redirect(request)
        contact = await visible_contact(call_id, user)
        if contact is None:
            return not_found(session, user)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        text = _text(form, "response")
        option_name = _text(form, "response_option_name") or None
        options = {o.name: o for o in contact.spec.response_options or []}
        problem = None
        if len(text) > MAX_TEXT:
            problem = f"The answer is too long (over {MAX_TEXT} characters)."
        elif option_name is not None and option_name not in options:
            problem = "That response option does not exist for this request."
        if not problem and not text and option_name is None:
            problem = "Write an answer (or pick one of the options)."
        if problem:
            return await render_contact(
                contact, session, user, error=problem, status_code=422, form=values
            )
        try:
            await service.respond_human_contact(
                call_id,
                response=text or None,  # a picked option alone is filled by the policy
                response_option_name=option_name,
                responder=f"user:{user.name}",
                via=VIA,
            )
        except NotFoundError:
            return not_found(session, user)
        except AlreadyDecidedError as exc:
            fresh = await visible_contact(call_id, user) or contact
            return await render_contact(
                fresh,
                session,
                user,
                error=f"Nothing was changed: this request was already answered. ({exc})",
                status_code=409,
            )
        except (InvalidDecisionError, ServerError) as exc:
            code = exc.status_code if 400 <= exc.status_code < 500 else 422
            return await render_contact(
                contact, session, user, error=f"Not accepted: {exc}", status_code=code, form=values
            )
        return redirect(views.contact_url(call_id) + "?decided=1")

    # -- review groups (one model turn on one page, see _groups) ------------------------------
    from ._groups import GroupPageDeps, install_group_routes

    install_group_routes(
        router,
        service,
        GroupPageDeps(
            render=render,
            redirect=redirect,
            current_user=current_user,
            csrf_ok=csrf_ok,
            csrf_refused=csrf_refused,
            login_redirect=login_redirect,
            not_found=not_found,
            visible_call=visible_call,
        ),
    )

    # -- grants (pages in _grant_pages) ------------------------------------------------------

    add_grant_routes(
        router,
        service,
        render=render,
        redirect=redirect,
        current_user=current_user,
        login_redirect=login_redirect,
        csrf_ok=csrf_ok,
        csrf_refused=csrf_refused,
        not_found=not_found,
        error_page=error_page,
        visible_call=visible_call,
    )
    return router
