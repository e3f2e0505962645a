"""``functionlayer-server tokens create`` / ``users create``: secrets shown once, stored hashed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

from functionlayer_server import ApprovalService, Settings
from functionlayer_server._store import open_store

from packages.server.tests._cli_run import run_cli


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, stdin=stdin)


async def _check(url: str, token: str, approver_token: str, password: str) -> None:
    service = ApprovalService(open_store(url), Settings(database_url=url))
    await service.start(scheduler=False)
    try:
        client = await service.authenticate_token(token)
        assert client is not None and client.project == "billing" and client.token_name == "agent-1"
        assert client.is_agent and client.approver is None
        assert await service.authenticate_token(token + "x") is None
        approver = await service.authenticate_token(approver_token)
        assert approver is not None and not approver.is_agent
        assert approver.approver == "alice" and approver.project == "billing"
        user = await service.accounts.login("alice", password, "127.0.0.1")
        assert user is not None and user.emails == frozenset({"alice@example.com"})
        assert user.projects == frozenset({"billing"})
        assert await service.accounts.login("alice", "not it at all", "127.0.0.1") is None
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
        "--project",
        "billing",
        "--password-stdin",
        "--database-url",
        url,
        stdin=password + "\n",
    )
    assert user.returncode == 0, user.stderr
    # An approver token decides as a person of the directory, who must exist.
    nobody = _cli(
        "tokens",
        "create",
        "ci",
        "--approver",
        "nobody",
        "--project",
        "billing",
        "--database-url",
        url,
    )
    assert nobody.returncode == 1 and "nobody" in nobody.stderr
    approver = _cli(
        "tokens",
        "create",
        "ci",
        "--approver",
        "alice",
        "--project",
        "billing",
        "--database-url",
        url,
    )
    assert approver.returncode == 0, approver.stderr
    approver_token = approver.stdout.strip()
    assert approver_token.startswith("fl_") and "decides as 'alice'" in approver.stderr
    listed = _cli("tokens", "list", "--database-url", url)
    assert listed.returncode == 0, listed.stderr
    rows = sorted(line.split("\t")[:3] for line in listed.stdout.splitlines())
    assert rows == [["agent-1", "billing", "agent"], ["ci", "billing", "approver:alice"]]

    asyncio.run(_check(url, token, approver_token, password))
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("cli.sqlite3"))
    assert token.encode() not in raw, "the token is stored in clear"
    assert approver_token.encode() not in raw, "the approver token is stored in clear"
    assert password.encode() not in raw, "the password is stored in clear"

    # Inbox passwords are at least 12 characters: an empty or short one creates nobody.
    for short in ("", "only-11char"):
        refused = _cli(
            "users", "create", "bob", "--password-stdin", "--database-url", url, stdin=short + "\n"
        )
        assert refused.returncode == 1 and "12 characters" in refused.stderr, refused.stderr
    persons = _cli("users", "list", "--database-url", url)
    assert [line.split("\t")[0] for line in persons.stdout.splitlines()] == ["alice"]
    bad = _cli("tokens", "create", "x", "--database-url", "mysql://nope")
    assert bad.returncode == 1 and "unsupported database URL" in bad.stderr


def _pty_cli(tmp_path: Path, typed: list[str]) -> tuple[int, str]:
    """``users create`` at a real terminal: each line of ``typed`` is entered when prompted."""
    import os
    import pty
    import select
    import time

    url = f"sqlite:///{tmp_path / 'pty.sqlite3'}"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pty as its terminal
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "functionlayer_server._cli",
                "users",
                "create",
                "carol",
                "--create",
                "--database-url",
                url,
            ],
        )
    screen = b""
    pending = list(typed)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            prompts = screen.count(b"Password for carol") + screen.count(b"Repeat it: ")
            if pending and prompts > len(typed) - len(pending) and screen.endswith(b": "):
                time.sleep(0.2)  # getpass flushes input when it turns echo off after the prompt
                os.write(fd, pending.pop(0).encode() + b"\r")
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def test_users_create_checks_the_length_before_asking_to_repeat(tmp_path: Path) -> None:
    code, screen = _pty_cli(tmp_path, ["short", "a-good-long-password", "a-good-long-password"])
    assert code == 0, screen
    first_repeat = screen.find("Repeat it:")
    too_short = screen.find("too short (5 characters)")
    assert 0 <= too_short < first_repeat, screen  # told at once, before the second typing
    assert screen.count("Repeat it:") == 1


def test_users_create_gives_up_after_three_short_passwords(tmp_path: Path) -> None:
    code, screen = _pty_cli(tmp_path, ["a", "bb", "ccc"])
    assert code == 1, screen
    assert "Repeat it:" not in screen
    assert "at least 12 characters" in screen


def test_serve_options_set_the_quotas_over_the_environment() -> None:
    from functionlayer_server._cli import _parser, _settings

    env = {
        "FUNCTIONLAYER_SERVER_MAX_PENDING_PER_TOKEN": "7",
        "FUNCTIONLAYER_SERVER_MAX_LONG_POLLS_PER_TOKEN": "9",
    }
    defaults = _settings(_parser().parse_args(["serve"]))
    assert (defaults.max_pending_per_token, defaults.max_long_polls_per_token) == (200, 100)
    with mock.patch.dict(os.environ, env):
        from_env = _settings(_parser().parse_args(["serve"]))
        given = _settings(
            _parser().parse_args(
                ["serve", "--max-pending-per-token", "3", "--max-long-polls-per-token", "0"]
            )
        )
    assert (from_env.max_pending_per_token, from_env.max_long_polls_per_token) == (7, 9)
    assert (given.max_pending_per_token, given.max_long_polls_per_token) == (3, 0)
