"""Every edge of the HTTP surface carries its guard, for every route the app has: the routes
are enumerated from the app itself, so a route added without its dependency fails here.

- Every POST of the inbox refuses a form without the session's CSRF token, with a wrong one,
  or one the browser says comes from another site (403 "Form refused"), and accepts the
  right one (the refusal is the token's, not the route's).
- Every GET of the inbox but the login page and its static files needs a logged-in person.
- Every route of the agent API (both prefixes) refuses a request without an API token, or
  with an unknown one (401), before it reads anything.
- Outside the API and the inbox there is only the documented public set.

On SQLite and PostgreSQL (the sessions and tokens are read from the store)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests._support.inbox import csrf_of
from tests._support.inprocess import STORES, InProcess, database_url, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

API_PREFIXES = ("/functionlayer/v1/", "/humanlayer/v1/")
PUBLIC = {
    # documented public routes: the landing redirect, the health check, the API's own docs
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    # the inbox's own public pages: its login form and static files
    ("GET", "/inbox/login"),
    ("GET", "/inbox/static/{name}"),
}
PASSWORD = "edges-password-123"
REFUSED = "Form refused"


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD aside), included routers too."""
    found = []
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or ()):
            if method != "HEAD" and context.path:
                found.append((method, context.path))
    return found


def concrete(path: str, call_id: str) -> str:
    """The path with every parameter filled: the existing call for call ids."""
    path = re.sub(r"\{call_id(:path)?\}", call_id, path)
    return re.sub(r"\{[a-z_]+(:path)?\}", "anything", path)


@pytest.fixture(params=STORES)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
    with database_url(request, tmp_path) as url:
        async with running_app(url) as app:
            await app.service.create_user("alice", PASSWORD)
            yield app


async def logged_in(world: InProcess) -> str:
    """Log alice in (the client keeps the cookie); the session's CSRF token."""
    client = world.client
    token = csrf_of((await client.get("/inbox/login")).text)
    answer = await client.post(
        "/inbox/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/inbox")).text)


async def test_every_inbox_post_refuses_a_missing_wrong_or_cross_site_csrf_token(
    world: InProcess,
) -> None:
    assert world.app is not None
    call_id = f"edge-{uuid.uuid4().hex[:8]}"
    created = await world.create(await world.agent(), call_id, "transfer", {"amount": 1})
    assert created.status_code == 200, created.text
    posts = [path for method, path in routes(world.app) if method == "POST"]
    inbox_posts = [path for path in posts if path.startswith("/inbox")]
    # login, logout, a call, a contact, a group, a grant, a revoke: never vacuous
    assert len(inbox_posts) >= 7, inbox_posts
    for path in inbox_posts:
        target = concrete(path, call_id)
        csrf = await logged_in(world)
        attempts: list[tuple[str, dict[str, str], dict[str, str]]] = [
            ("no token", {"action": "approve"}, {}),
            ("empty token", {"action": "approve", "csrf_token": ""}, {}),
            ("wrong token", {"action": "approve", "csrf_token": csrf[::-1]}, {}),
            (
                "cross-site",
                {"action": "approve", "csrf_token": csrf},
                {"Sec-Fetch-Site": "cross-site"},
            ),
            (
                "other origin",
                {"action": "approve", "csrf_token": csrf},
                {"Origin": "https://evil.example"},
            ),
        ]
        for what, form, headers in attempts:
            refused = await world.client.post(target, data=form, headers=headers)
            assert refused.status_code == 403, f"POST {path} with {what}: {refused.status_code}"
            assert REFUSED in refused.text, f"POST {path} with {what}"
        assert (await world.status(await world.agent(), call_id)).get("approved") is None
        # The right token passes the check (whatever the route then answers).
        accepted = await world.client.post(target, data={"csrf_token": csrf, "action": ""})
        assert REFUSED not in accepted.text, f"POST {path} refused its own session's token"
        world.client.cookies.clear()


async def test_every_inbox_page_needs_a_logged_in_person(world: InProcess) -> None:
    assert world.app is not None
    pages = [
        path
        for method, path in routes(world.app)
        if method == "GET" and path.startswith("/inbox") and ("GET", path) not in PUBLIC
    ]
    assert len(pages) >= 9, pages
    for path in pages:
        answer = await world.client.get(concrete(path, "some-call"))
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/inbox/login?next="), path
        else:  # what the pages' script polls
            assert answer.status_code == 401, f"GET {path}: {answer.status_code}"
            assert answer.json() == {"detail": "login required"}


async def test_every_api_route_needs_an_api_token(world: InProcess) -> None:
    assert world.app is not None
    every = routes(world.app)
    api = [(method, path) for method, path in every if path.startswith(API_PREFIXES)]
    assert len(api) >= 2 * 17, api  # both prefixes
    for method, path in api:
        target = concrete(path, "some-call")
        for headers in ({}, {"Authorization": "Bearer fl_not-a-token"}, {"Authorization": "x"}):
            answer = await world.client.request(method, target, headers=headers, json={})
            assert answer.status_code == 401, f"{method} {path} {headers}: {answer.text}"
            assert answer.json()["code"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
    # Everything else is the inbox (guarded above) or the documented public set.
    rest = {
        (method, path)
        for method, path in every
        if not path.startswith(API_PREFIXES) and not path.startswith("/inbox")
    }
    assert rest <= PUBLIC, rest - PUBLIC


async def test_the_public_routes_answer_without_any_credential(world: InProcess) -> None:
    client: httpx.AsyncClient = world.client
    for method, path in sorted(PUBLIC):
        answer = await client.request(method, concrete(path, "x").replace("anything", "inbox.css"))
        assert answer.status_code in (200, 303), f"{method} {path}: {answer.status_code}"
