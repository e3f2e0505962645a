"""``functionlayer-server tokens create`` / ``users create``: secrets shown once, stored hashed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from functionlayer_server import ApprovalService, Settings
from functionlayer_server._store import open_store


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "functionlayer_server._cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _check(url: str, token: str, password: str) -> None:
    service = ApprovalService(open_store(url), Settings(database_url=url))
    await service.start(scheduler=False)
    try:
        client = await service.authenticate_token(token)
        assert client is not None and client.project == "billing" and client.token_name == "agent-1"
        assert await service.authenticate_token(token + "x") is None
        user = await service.authenticate_user("alice", password)
        assert user is not None and user.email == "alice@example.com"
        assert await service.authenticate_user("alice", "not it") is None
    finally:
        await service.stop()


def test_tokens_and_users_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    url = f"sqlite:///{db}"
    made = _cli(
        "tokens", "create", "agent-1", "--project", "billing", "--database-url", url, "--create"
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("fl_") and len(token) > 30 and "\n" not in token
    assert "only once" in made.stderr

    password = "correct horse battery staple"
    user = _cli(
        "users",
        "create",
        "alice",
        "--email",
        "alice@example.com",
        "--password-stdin",
        "--database-url",
        url,
        stdin=password + "\n",
    )
    assert user.returncode == 0, user.stderr

    asyncio.run(_check(url, token, password))
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("cli.sqlite3"))
    assert token.encode() not in raw, "the token is stored in clear"
    assert password.encode() not in raw, "the password is stored in clear"

    empty = _cli("users", "create", "bob", "--password-stdin", "--database-url", url, stdin="\n")
    assert empty.returncode == 2 and "empty" in empty.stderr
    bad = _cli("tokens", "create", "x", "--database-url", "mysql://nope")
    assert bad.returncode == 1 and "unsupported database URL" in bad.stderr
