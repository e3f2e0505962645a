"""Login throttling cannot be turned against a person. The agent learns approvers' names from
its own API (``responded_by``, the audit trail); guessing their passwords must stay throttled,
but must not keep them out of the inbox from a browser they have logged in with before.
Against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from functionlayer_server._cli import create_user

from tests.security.conftest import PASSWORD, Deployment, csrf

ATTACKER = "203.0.113.66"  # uvicorn takes the client address from X-Forwarded-For (proxy)
ALICE_HOME = "198.51.100.7"


def browser(dep: Deployment, address: str) -> httpx.Client:
    return httpx.Client(
        base_url=dep.server.base_url, headers={"X-Forwarded-For": address}, timeout=30
    )


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    token = csrf(client.get("/inbox/login").text)
    return client.post(
        "/inbox/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def logout(client: httpx.Client) -> None:
    page = client.get("/inbox")
    answer = client.post(
        "/inbox/logout", data={"csrf_token": csrf(page.text)}, follow_redirects=False
    )
    assert answer.status_code == 303


def test_guessing_an_approvers_password_does_not_lock_them_out(deployment: Deployment) -> None:
    name = f"alice{uuid.uuid4().hex[:6]}"
    asyncio.run(create_user(deployment.server.settings, name, PASSWORD))
    # Alice logged in from her browser before (and logged out since).
    alice = browser(deployment, ALICE_HOME)
    assert login(alice, name, PASSWORD).status_code == 303
    logout(alice)
    # The agent sprays guesses for her name from another address: throttled after five.
    attacker = browser(deployment, ATTACKER)
    codes = [login(attacker, name, f"guess number {n:04d}").status_code for n in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    # Alice, from her known browser, still gets in with her password: at home, and even
    # from the attacker's own address (a shared NAT, a spoofed forwarding header).
    assert login(alice, name, PASSWORD).status_code == 303, "alice is locked out"
    logout(alice)
    alice.headers["X-Forwarded-For"] = ATTACKER
    assert login(alice, name, PASSWORD).status_code == 303, "alice is locked out"
    logout(alice)
    # Her logging in gives the attacker no fresh window: still refused, even the right
    # password, from any browser that never logged in as her.
    assert login(attacker, name, "one more guess 0000").status_code == 429
    assert login(attacker, name, PASSWORD).status_code == 429
    assert login(browser(deployment, "192.0.2.1"), name, PASSWORD).status_code == 429


def test_a_known_browser_is_throttled_on_its_own_failures(deployment: Deployment) -> None:
    name = f"bert{uuid.uuid4().hex[:6]}"
    asyncio.run(create_user(deployment.server.settings, name, PASSWORD))
    mine = browser(deployment, ALICE_HOME)
    assert login(mine, name, PASSWORD).status_code == 303
    logout(mine)
    codes = [login(mine, name, f"my typo number {n:04d}").status_code for n in range(6)]
    assert codes == [401] * 5 + [429], codes
    assert login(mine, name, PASSWORD).status_code == 429
    # A forged or altered device cookie counts as no device cookie.
    forged = browser(deployment, "192.0.2.77")
    cookie = mine.cookies.get("functionlayer_device", path="/inbox")
    assert cookie
    forged.cookies.set(
        "functionlayer_device", cookie[:-2] + "xx", domain="127.0.0.1", path="/inbox"
    )
    assert login(forged, name, "a forger's guess 00").status_code == 401
    # (The cookie is sent: the genuine one, copied, is that browser and its count.)
    forged.cookies.set("functionlayer_device", cookie, domain="127.0.0.1", path="/inbox")
    assert login(forged, name, PASSWORD).status_code == 429
