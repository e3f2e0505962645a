"""Who is looking at the inbox, as FastAPI dependencies: the session cookie, the person it
belongs to, and the CSRF check of every form.

- ``CurrentViewer``: the logged-in person and their session (every page's forms carry its
  CSRF token); anyone else is redirected to the login page.
- ``CurrentVisitor``: whoever it is, logged in or not (the login page, logout).
- ``Watcher``: the same for the small JSON endpoints the pages poll (401 instead).
- ``ShownCall`` / ``ShownContact``: the request of the path, if this person may see it (else
  the same 404 page as for a request that does not exist).
- ``CsrfForm``: the submitted form, once its CSRF token matched the session's and the
  browser did not say it came from another site (else the 403 "Form refused" page). Declared
  before ``CurrentViewer`` in a POST, so a forged form is refused before anything else.
- ``LoginForm``: the same check for the login form, which has a session but no person yet.
"""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from functionlayer.models import FunctionCall, HumanContact
from starlette.datastructures import FormData

from .._app_state import Config, Service
from .._policy import Person
from ._lookup import visible_call, visible_contact
from ._pages import (
    Answer,
    csrf_refused,
    login_redirect,
    login_required_json,
    not_found,
    session_codec,
)
from ._session import COOKIE_NAME, Session

__all__ = [
    "CookieSession",
    "CsrfForm",
    "CurrentViewer",
    "CurrentVisitor",
    "LoginForm",
    "ShownCall",
    "ShownContact",
    "Viewer",
    "Visitor",
    "Watcher",
]


def cookie_session(request: Request, settings: Config) -> Session | None:
    """The signed session cookie's session (None when missing, forged or too old)."""
    return session_codec(settings).loads(request.cookies.get(COOKIE_NAME))


CookieSession = Annotated[Session | None, Depends(cookie_session)]


@dataclass(frozen=True)
class Visitor:
    """Whoever sent the request: their session (if any) and its person (if logged in)."""

    session: Session | None
    person: Person | None


async def visitor(session: CookieSession, service: Service) -> Visitor:
    if session is None or session.sid is None:
        return Visitor(session, None)
    return Visitor(session, await service.accounts.session_person(session.sid))


CurrentVisitor = Annotated[Visitor, Depends(visitor)]


@dataclass(frozen=True)
class Viewer:
    """A logged-in person and their session (its CSRF token goes into every form)."""

    session: Session
    person: Person


def viewer(request: Request, who: CurrentVisitor) -> Viewer:
    if who.person is None or who.session is None:
        raise Answer(login_redirect(request))
    return Viewer(who.session, who.person)


CurrentViewer = Annotated[Viewer, Depends(viewer)]


async def shown_call(call_id: str, who: CurrentViewer, service: Service) -> FunctionCall:
    call = await visible_call(service, call_id, who.person)
    if call is None:
        raise Answer(not_found(who.session, who.person))
    return call


async def shown_contact(call_id: str, who: CurrentViewer, service: Service) -> HumanContact:
    contact = await visible_contact(service, call_id, who.person)
    if contact is None:
        raise Answer(not_found(who.session, who.person))
    return contact


ShownCall = Annotated[FunctionCall, Depends(shown_call)]
ShownContact = Annotated[HumanContact, Depends(shown_contact)]


def watcher(who: CurrentVisitor) -> Person:
    if who.person is None:
        raise Answer(login_required_json())
    return who.person


Watcher = Annotated[Person, Depends(watcher)]


def _cross_site(request: Request, public_url: str) -> bool:
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


async def _checked(
    request: Request, settings: Config, session: Session | None, person: Person | None
) -> FormData:
    form = await request.form()
    token = form.get("csrf_token")
    if (
        session is None
        or _cross_site(request, str(settings.public_url or ""))
        or not isinstance(token, str)
        or not token
        or not hmac.compare_digest(token.encode(), session.csrf.encode())
    ):
        raise Answer(csrf_refused(session, person))
    return form


async def csrf_form(request: Request, settings: Config, who: CurrentVisitor) -> FormData:
    return await _checked(request, settings, who.session, who.person)


async def login_form(request: Request, settings: Config, session: CookieSession) -> FormData:
    return await _checked(request, settings, session, None)


CsrfForm = Annotated[FormData, Depends(csrf_form)]
LoginForm = Annotated[FormData, Depends(login_form)]
