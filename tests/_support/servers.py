"""Fixtures that run the real server: ``server_factory`` starts ``functionlayer-server serve``
(uvicorn) in a subprocess on a free port with a fresh SQLite database in ``tmp_path`` (or any
database URL), so tests can kill -9 and restart it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from functionlayer_server._cli import create_token, create_user
from functionlayer_server._settings import ENV_PREFIX, Settings

APPROVER = "approver"
"""The person behind ``ServerProcess.approver_token``: decides through the API (only persons
decide; the agent token ``server.token`` never can)."""

STARTUP_TIMEOUT = 90.0
"""How long a server may take to answer /healthz after its start. Not a property under test:
the wait ends as soon as it answers. On a loaded 2-core machine (several xdist workers) starts
took over 30 s, and the tests using the server (e.g. tests/mcp/test_ending.py) errored with
"server did not start" although the server was starting."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A running ``functionlayer-server serve``."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_base = f"{self.base_url}/functionlayer/v1"
        self.log_path = log_path
        self.env = dict(env or {})
        self.command: list[str] = [sys.executable, "-m", "functionlayer_server._cli", "serve"]
        """What ``start`` runs (a test may run the CLI through a wrapper of its own)."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings = Settings(database_url=database_url)
        self.token = token or self.create_token("test-agent")
        self._approver_tokens: dict[tuple[str, str], str] = {}

    # -- admin, straight on the database (what the CLI does) ---------------------------------

    def create_token(
        self, name: str, project: str = "default", *, approver: str | None = None
    ) -> str:
        """An agent token (creates and reads requests, never decides), or with ``approver``
        a token that decides as that person."""
        return asyncio.run(create_token(self.settings, name, project, approver=approver))

    def create_user(
        self,
        username: str,
        password: str | None,
        email: str | None = None,
        slack_user_id: str | None = None,
        *,
        emails: Sequence[str] = (),
        slack_ids: Sequence[str] = (),
        projects: Sequence[str] = (),
    ) -> None:
        asyncio.run(
            create_user(
                self.settings,
                username,
                password,
                email=email,
                slack_user_id=slack_user_id,
                emails=emails,
                slack_ids=slack_ids,
                projects=projects,
            )
        )

    def add_person(
        self,
        name: str,
        *,
        emails: Sequence[str] = (),
        slack_ids: Sequence[str] = (),
        password: str | None = None,
        projects: Sequence[str] = (),
    ) -> str:
        """A person of the directory (no inbox login unless ``password``), with the email
        addresses and Slack ids a request may route to; a new person without ``projects``
        joins ``default``. Returns the name."""
        self.create_user(name, password, emails=emails, slack_ids=slack_ids, projects=projects)
        return name

    def approver_token_for(self, name: str, project: str = "default") -> str:
        """A token that decides as person ``name`` (created, in ``project``, if missing),
        made once per server and project."""
        key = (name, project)
        if key not in self._approver_tokens:

            async def make() -> str:
                from functionlayer_server._cli import _with_service

                service = await _with_service(self.settings)
                try:
                    person = await service.accounts.get_person(name)
                    if person is None or project not in person.projects:
                        await service.accounts.create_person(name, projects=[project])
                    return await service.create_token(
                        f"approver-{name}-{project}", project=project, approver=name
                    )
                finally:
                    await service.stop()

            self._approver_tokens[key] = asyncio.run(make())
        return self._approver_tokens[key]

    @property
    def approver_token(self) -> str:
        """Decides as the person ``approver`` (see ``APPROVER``) in project ``default``."""
        return self.approver_token_for(APPROVER)

    def approver_client(
        self, name: str = APPROVER, project: str = "default", **kwargs: Any
    ) -> httpx.Client:
        """An API client that decides as person ``name``."""
        return self.client(self.approver_token_for(name, project), **kwargs)

    # -- process control ----------------------------------------------------------------------

    def start(self) -> ServerProcess:
        env = {**os.environ, **self.env}
        env[ENV_PREFIX + "DATABASE_URL"] = self.database_url
        env[ENV_PREFIX + "PORT"] = str(self.port)
        env[ENV_PREFIX + "HOST"] = "127.0.0.1"
        env.setdefault(ENV_PREFIX + "LOG_LEVEL", "warning")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not start within {STARTUP_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Graceful stop (SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_base, headers=self.headers(token), timeout=30, **kwargs
        )


ServerFactory = Callable[..., ServerProcess]


def in_thread(fn: Callable[[], Any]) -> Callable[..., Any]:
    """Run ``fn`` (an agent) in a thread; the returned ``join(timeout=20)`` gives its result."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout: float = 20.0) -> Any:
        thread.join(timeout)
        assert not thread.is_alive(), "the agent is still waiting"
        if "error" in box:
            raise box["error"]
        return box["result"]

    return join


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.contextmanager
def _factory(directory: Path) -> Iterator[ServerFactory]:
    started: list[ServerProcess] = []

    def factory(
        database_url: str | None = None,
        *,
        env: dict[str, str] | None = None,
        start: bool = True,
        token: str | None = None,
    ) -> ServerProcess:
        index = len(started)
        url = database_url or f"sqlite:///{directory / f'server{index}.sqlite3'}"
        server = ServerProcess(url, directory / f"server{index}.log", env=env, token=token)
        started.append(server)
        return server.start() if start else server

    try:
        yield factory
    finally:
        for server in started:
            server.kill()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``server_factory(database_url=None, env=None, start=True)`` -> a running server; a fresh
    SQLite file in tmp_path by default. Every server is killed at teardown."""
    with _factory(tmp_path) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Like ``server_factory``, shared by a module's tests (starting a server takes seconds)."""
    with _factory(tmp_path_factory.mktemp("servers")) as factory:
        yield factory


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory()


# -- PostgreSQL ---------------------------------------------------------------------------------

POSTGRES_ENV = "FUNCTIONLAYER_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:55432/postgres"


def _admin_url() -> tuple[str, bool]:
    url = os.environ.get(POSTGRES_ENV)
    return (url, True) if url else (POSTGRES_DEFAULT, False)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards.

    With FUNCTIONLAYER_TEST_POSTGRES_URL set (CI), an unreachable server fails the test; without
    it, the default local server is tried and the test is skipped, saying why, if it is absent."""
    import uuid

    import psycopg

    admin, configured = _admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if configured:
            pytest.fail(f"{POSTGRES_ENV}={admin} is set but the server is unreachable: {exc}")
        pytest.skip(
            f"no PostgreSQL at {admin} and {POSTGRES_ENV} is unset (.ci/start-postgres.sh starts one)"
        )
    name = f"fl_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url
