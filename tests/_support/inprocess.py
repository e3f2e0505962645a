"""The server app in process (httpx over ASGI, no subprocess) on SQLite or PostgreSQL: agents
and persons talk to it over its HTTP API with their own tokens, as they would to a real server.
For behaviour tests that need to reach inside (a pause or a crash point in the store)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from functionlayer_server import create_app
from functionlayer_server._settings import Settings

from tests._support.mail import email_settings
from tests._support.servers import fresh_postgres_database

API = "/functionlayer/v1"


@contextmanager
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite in ``tmp_path``, or a fresh PostgreSQL database (``request.param``)."""
    if request.param == "postgres":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class InProcess:
    def __init__(self, client: httpx.AsyncClient, service: Any, app: FastAPI | None = None) -> None:
        self.client = client
        self.service = service
        self.app = app

    async def agent(self, name: str | None = None, project: str = "default") -> dict[str, str]:
        """Headers of a fresh agent token."""
        token = await self.service.create_token(
            name or f"agent-{uuid.uuid4().hex[:6]}", project=project
        )
        return {"Authorization": f"Bearer {token}"}

    async def person(self, name: str, **identities: Any) -> dict[str, str]:
        """A person of the directory and the headers of a token that decides as them."""
        await self.service.accounts.create_person(name, **identities)
        token = await self.service.create_token(f"{name}-token", approver=name)
        return {"Authorization": f"Bearer {token}"}

    async def create(
        self, headers: dict[str, str], call_id: str, fn: str, kwargs: dict[str, Any], **spec: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"{API}/function_calls",
            json={
                "run_id": "run",
                "call_id": call_id,
                "spec": {"fn": fn, "kwargs": kwargs, **spec},
            },
            headers=headers,
        )

    async def decide(self, headers: dict[str, str], call_id: str, **body: Any) -> httpx.Response:
        return await self.client.post(
            f"{API}/agent/function_calls/{call_id}/respond", json=body, headers=headers
        )

    async def status(self, headers: dict[str, str], call_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{API}/function_calls/{call_id}", headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json()["status"] or {})


@asynccontextmanager
async def running_app(url: str, **settings: Any) -> AsyncIterator[InProcess]:
    app = create_app(Settings(database_url=url, scheduler_interval_seconds=0.05, **settings))
    async with app.router.lifespan_context(app):
        # A server error is a 500 answer, as a real server gives it.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield InProcess(client, app.state.service, app)


def app_fixture(*, policy: str | None = None, mail: bool = False, **settings: Any) -> Any:
    """A fixture for a module's ``app = app_fixture(...)``: the app in process on each store
    (SQLite, PostgreSQL), with ``policy`` as its policy file, sending email to the module's
    ``mailbox`` fixture (an SMTP server, its port second) when ``mail``, and ``settings``."""

    @pytest.fixture(params=STORES)
    async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcess]:
        extra = dict(settings)
        if mail:
            extra.update(email_settings(request.getfixturevalue("mailbox")[1]))
        if policy is not None:
            (tmp_path / "policy.toml").write_text(policy)
            extra["policy_file"] = str(tmp_path / "policy.toml")
        with database_url(request, tmp_path) as url:
            async with running_app(url, **extra) as running:
                yield running

    return app
