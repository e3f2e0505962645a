"""A person in the web inbox, as a browser would be: the CSRF token of a page's forms, the
login form, and deciding a request with the decision form. The one place tests scrape the
inbox's HTML or decide as a person: adapt it when the inbox changes.

Works with any ``httpx.Client`` (Starlette's ``TestClient`` is one) whose base URL is the
server's; ``person_decides`` decides through the service directly, for tests that hold it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from functionlayer.models import FunctionCallStatus

__all__ = ["CSRF_RE", "csrf_of", "decide_in_inbox", "log_in", "person_decides"]

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token in an inbox page's forms."""
    match = CSRF_RE.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def log_in(browser: httpx.Client, person: str, password: str) -> httpx.Response:
    """Log ``person`` in with the login form (its CSRF token from the login page)."""
    token = csrf_of(browser.get("/inbox/login").text)
    answer = browser.post(
        "/inbox/login",
        data={"username": person, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text  # logged in: off to the inbox
    return answer


def decide_in_inbox(browser: httpx.Client, call_id: str, form: Mapping[str, str]) -> httpx.Response:
    """A logged-in person opens the request's page and submits its decision form: ``form``
    has the ``action`` (``approve``, ``reject`` with ``feedback``, ``edit`` with
    ``edited_kwargs``, ``respond`` with ``response``) and any other field. Returns the
    redirect that says the decision was recorded."""
    path = "/inbox/calls/" + quote(call_id, safe="")
    page = browser.get(path)
    assert page.status_code == 200, page.text  # the person sees the request
    decided = browser.post(
        path, data={**form, "csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert decided.status_code == 303, decided.text
    assert decided.headers["location"].endswith("?decided=1")
    return decided


class _Holder(Protocol):
    """A test's handle on an app: its service, and a way to run a coroutine function."""

    service: Any

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


def person_decides(
    app: _Holder,
    call_id: str,
    *,
    approved: bool,
    comment: str | None = None,
    responder: str = "alice",
    via: str = "web",
) -> Any:
    """A person of the directory decides through the service, as the inbox does
    (``responder``: their login or one of their identities)."""
    decision = FunctionCallStatus(approved=approved, comment=comment)
    return app.run(
        app.service.respond_function_call, call_id, decision, responder=responder, via=via
    )
