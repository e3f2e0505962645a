"""A real server (subprocess, uvicorn) on SQLite and on PostgreSQL, with a small directory of
persons, for the hostile-agent suite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from functionlayer_server._cli import create_token, create_user

from tests._support.inbox import csrf_of as csrf
from tests._support.inbox import log_in
from tests._support.servers import ServerProcess, fresh_postgres_database

__all__ = ["PASSWORD", "Deployment", "csrf"]

PASSWORD = "correct horse battery"


@dataclass
class Deployment:
    server: ServerProcess
    agent_token: str
    other_agent_token: str
    alice_token: str
    bob_token: str

    def agent(self, prefix: str = "/functionlayer/v1", token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url + prefix,
            headers={"Authorization": f"Bearer {token or self.agent_token}"},
            timeout=30,
        )

    def person(self, name: str) -> httpx.Client:
        token = {"alice": self.alice_token, "bob": self.bob_token}[name]
        return self.agent(token=token)

    def login(self, username: str = "alice", password: str = PASSWORD) -> httpx.Client:
        """A browser logged into the inbox (cookie jar), via the real login form."""
        browser = httpx.Client(base_url=self.server.base_url, timeout=30)
        log_in(browser, username, password)
        return browser


def _deploy(url: str, directory: Path) -> Iterator[Deployment]:
    server = ServerProcess(url, directory / "server.log")
    settings = server.settings

    async def setup() -> tuple[str, str, str]:
        await create_user(
            settings, "alice", PASSWORD, emails=["alice@corp.example"], slack_ids=["UALICE"]
        )
        await create_user(
            settings, "bob", PASSWORD, emails=["bob@corp.example"], slack_ids=["UBOB"]
        )
        await create_user(settings, "carol", PASSWORD, emails=["carol@corp.example"])
        other = await create_token(settings, "other-agent")
        alice = await create_token(settings, "alice-api", approver="alice")
        bob = await create_token(settings, "bob-api", approver="bob")
        return other, alice, bob

    other, alice, bob = asyncio.run(setup())
    server.start()
    try:
        yield Deployment(server, server.token, other, alice, bob)
    finally:
        server.kill()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("security")
    if request.param == "sqlite":
        yield from _deploy(f"sqlite:///{directory / 'fl.sqlite3'}", directory)
    else:
        with fresh_postgres_database() as url:
            yield from _deploy(url, directory)
