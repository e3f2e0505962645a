"""How the inbox answers: HTML pages from the templates (autoescaped, with the security
headers), redirects, the error pages, the session cookies, and :class:`Answer`, the
exception a dependency raises to answer at once (the login redirect, a refused form)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .._policy import Person
from .._settings import Settings
from . import _views as views
from ._session import COOKIE_NAME, DEVICE_COOKIE_NAME, DeviceCodec, Session, SessionCodec

__all__ = [
    "PREFIX",
    "STATIC_TYPES",
    "VIA",
    "Answer",
    "answer_now",
    "csrf_refused",
    "device_codec",
    "error_page",
    "login_redirect",
    "login_required_json",
    "not_found",
    "page",
    "redirect",
    "render",
    "safe_next",
    "secure",
    "session_codec",
    "set_device",
    "set_session",
    "static_content",
]

PREFIX = "/inbox"
VIA = "web"  # the channel the inbox records decisions through

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


def _load_static() -> dict[str, tuple[bytes, str]]:
    """Static files by name: (content, short content hash for cache busting)."""
    files = resources.files("functionlayer_server._inbox") / "static"
    loaded: dict[str, tuple[bytes, str]] = {}
    for name in STATIC_TYPES:
        data = (files / name).read_bytes()
        loaded[name] = (data, hashlib.sha256(data).hexdigest()[:12])
    return loaded


_STATIC = _load_static()


def static_content(name: str) -> tuple[bytes, str] | None:
    """A static file's content and media type, or None."""
    found = _STATIC.get(name)
    return None if found is None else (found[0], STATIC_TYPES[name])


def _static_url(name: str) -> str:
    return f"{PREFIX}/static/{name}?v={_STATIC[name][1]}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("functionlayer_server._inbox", "templates"),
        autoescape=True,  # on for every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["option_label"] = views.option_label
    env.globals["static_url"] = _static_url
    return env


_ENV = _environment()


class Answer(Exception):
    """Raised by a dependency to answer the request with ``response`` right away (the
    handler installed by ``install_inbox`` sends it)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def answer_now(request: Request, exc: Exception) -> Response:
    """The exception handler for :class:`Answer`."""
    assert isinstance(exc, Answer)
    return exc.response


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def page(template: str, context: Mapping[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """The template rendered, without the security headers yet (see :func:`render`)."""
    return HTMLResponse(_ENV.get_template(template).render(**context), status_code=status_code)


def render(template: str, context: Mapping[str, Any], *, status_code: int = 200) -> Response:
    return secure(page(template, context, status_code=status_code))


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


def error_page(
    session: Session | None, user: Person | None, status_code: int, title: str, message: str
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


def not_found(session: Session, user: Person) -> Response:
    return error_page(
        session, user, 404, "Not found", "There is no request with that id that you may see."
    )


def csrf_refused(session: Session | None, user: Person | None) -> Response:
    return error_page(
        session,
        user,
        403,
        "Form refused",
        "This form was refused because its security token was missing or wrong, or it was "
        "sent from another site. Go back, reload the page and try again.",
    )


def login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return redirect(f"{PREFIX}/login?next={quote(target, safe='')}")


def login_required_json() -> Response:
    return secure(JSONResponse({"detail": "login required"}, status_code=401))


def safe_next(target: str | None) -> str:
    """Only same-site inbox paths after login: no open redirect."""
    if not target or not target.startswith(PREFIX) or target.startswith("//"):
        return PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return PREFIX
    return target


# -- cookies ------------------------------------------------------------------------------------
# The secret may be generated and persisted by the app's lifespan after the routes are built,
# so the codecs are made from the settings when a request arrives (one per key).


@functools.lru_cache(maxsize=4)
def _session_codec(key: str) -> SessionCodec:
    return SessionCodec(key)


@functools.lru_cache(maxsize=4)
def _device_codec(key: str) -> DeviceCodec:
    return DeviceCodec(key)


def session_codec(settings: Settings) -> SessionCodec:
    return _session_codec(str(settings.secret_key or ""))


def device_codec(settings: Settings) -> DeviceCodec:
    return _device_codec(str(settings.secret_key or ""))


def _secure_cookie(settings: Settings) -> bool:
    return str(settings.public_url or "").startswith("https://")


def set_session(response: Response, session: Session, settings: Settings) -> None:
    codec = session_codec(settings)
    response.set_cookie(
        COOKIE_NAME,
        codec.dumps(session),
        max_age=codec.max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=_secure_cookie(settings),
    )


def set_device(response: Response, username: str, device: str | None, settings: Settings) -> None:
    codec = device_codec(settings)
    response.set_cookie(
        DEVICE_COOKIE_NAME,
        codec.dumps(username, device),
        max_age=codec.max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=_secure_cookie(settings),
    )
