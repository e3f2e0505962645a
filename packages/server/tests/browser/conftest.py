"""Playwright fixtures: one Debian chromium per test module, a fresh context per test.

Module scope, not session: Playwright's sync API keeps an asyncio loop marked running in the
test thread while it is open, which would break later tests that call ``asyncio.run``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("FUNCTIONLAYER_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the inbox browser tests need Debian's chromium "
            "(apt-get install chromium; .ci/run installs it). Not skipping: CI must run them."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _off_loop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a worker thread: Playwright's sync API keeps an asyncio loop running in
    the test thread, so helpers that call ``asyncio.run`` (token and user creation) fail there."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


class BrowserServer:
    """The conftest server, with its admin helpers moved off Playwright's loop."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_user(self, *args: Any, **kwargs: Any) -> None:
        _off_loop(self._inner.create_user, *args, **kwargs)

    def create_token(self, *args: Any, **kwargs: Any) -> str:
        return str(_off_loop(self._inner.create_token, *args, **kwargs))

    def add_person(self, *args: Any, **kwargs: Any) -> str:
        return str(_off_loop(self._inner.add_person, *args, **kwargs))

    def approver_token_for(self, *args: Any, **kwargs: Any) -> str:
        return str(_off_loop(self._inner.approver_token_for, *args, **kwargs))

    @property
    def approver_token(self) -> str:
        return self.approver_token_for("approver")

    def approver_client(
        self, name: str = "approver", project: str = "default", **kwargs: Any
    ) -> Any:
        return self._inner.client(self.approver_token_for(name, project), **kwargs)


@pytest.fixture(scope="module")
def _session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserServer]:
    # One server for all browser tests: starting one costs seconds on a busy 2-core machine.
    # Tests tell their requests apart by function name and never assume an empty inbox.
    from tests._support.servers import ServerProcess

    root = tmp_path_factory.mktemp("inbox-browser-server")
    process = _off_loop(
        lambda: ServerProcess(f"sqlite:///{root / 'db.sqlite3'}", root / "server.log").start()
    )
    try:
        yield BrowserServer(process)
    finally:
        process.kill()


@pytest.fixture
def server(_session_server: BrowserServer, browser: Any) -> BrowserServer:
    """Overrides the conftest ``server`` for browser tests (same interface)."""
    return _session_server


class Dialogs:
    """Every alert/confirm/prompt the page opened: an XSS payload that ran shows up here."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, dialog: Any) -> None:
        self.messages.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@contextmanager
def new_page(browser: Any, dialogs: Dialogs, **context: Any) -> Iterator[Any]:
    """A page in a fresh browser context (``context``: its options), its dialogs recorded."""
    opened_context = browser.new_context(**context)
    opened_context.set_default_timeout(10_000)
    opened = opened_context.new_page()
    opened.on("dialog", dialogs)
    try:
        yield opened
    finally:
        opened_context.close()


@pytest.fixture
def page(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    with new_page(browser, dialogs, viewport={"width": 1200, "height": 900}) as opened:
        yield opened


def _login(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/inbox")
    page.wait_for_url("**/inbox/login**")  # every page needs a login first
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form[action='/inbox/login'] button[type=submit]")
    page.wait_for_url(f"{base_url}/inbox")


@pytest.fixture
def login() -> Any:
    """``login(page, base_url, username, password)``: log in through the real form."""
    return _login
