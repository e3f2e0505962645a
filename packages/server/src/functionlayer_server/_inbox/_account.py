"""Logging in and out of the inbox, and its static files."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .._accounts import LoginThrottled
from .._app_state import Config, Service
from ._deps import CookieSession, CsrfForm, CurrentVisitor, LoginForm
from ._pages import (
    PREFIX,
    device_codec,
    page,
    redirect,
    render,
    safe_next,
    secure,
    session_codec,
    set_device,
    set_session,
    static_content,
)
from ._session import COOKIE_NAME, DEVICE_COOKIE_NAME, Session

__all__ = ["router"]

router = APIRouter()


@router.get(PREFIX + "/login")
async def login_page(who: CurrentVisitor, settings: Config, next: str | None = None) -> Response:
    if who.person is not None:
        return redirect(safe_next(next))
    session = who.session
    fresh = session is None
    if session is None:
        session = Session.fresh()
    response = page(
        "login.html",
        {"user": None, "csrf": session.csrf, "next": safe_next(next), "error": None},
    )
    if fresh:
        set_session(response, session, settings)
    return secure(response)


@router.post(PREFIX + "/login")
async def login_submit(
    request: Request, form: LoginForm, session: CookieSession, service: Service, settings: Config
) -> Response:
    assert session is not None  # the CSRF check needs one
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""))
    user = None
    address = request.client.host if request.client else "unknown"
    # A browser that logged in as this person before: guesses made elsewhere do not
    # lock it out (see LoginThrottle).
    known = device_codec(settings).loads(request.cookies.get(DEVICE_COOKIE_NAME))
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
    started = await service.accounts.start_session(user.name, session_codec(settings).max_age)
    set_session(response, Session.fresh(started.session_id), settings)
    set_device(response, user.name, known[1] if known else None, settings)
    return response


@router.post(PREFIX + "/logout")
async def logout(form: CsrfForm, who: CurrentVisitor, service: Service) -> Response:
    if who.person is not None:
        # Ends every session of this person: a copied cookie stops working too.
        await service.accounts.end_sessions(who.person.name)
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(COOKIE_NAME, path=PREFIX)
    return response


@router.get(PREFIX + "/static/{name}")
async def static_file(name: str) -> Response:
    found = static_content(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    content, media_type = found
    response = Response(content, media_type=media_type)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
