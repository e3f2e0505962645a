"""The server CLI on first contact: ``--version``, which database a command uses, ``--create``,
one ``serve`` per SQLite file, a busy port explained, and the banner of ``serve``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from functionlayer_server import __version__

from packages.server.tests._cli_run import run_cli

SERVER_START = 60.0


def _cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_SERVER_")}
    return run_cli(*args, stdin=stdin, cwd=cwd, env=env)


@contextmanager
def _serving(
    *args: str, cwd: Path, files: tuple[int, int] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``serve --port 0 ...`` until its banner is out; yields the process and the banner.
    ``files``: the (soft, hard) limit of open files it starts with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_SERVER_")}

    def limit_files() -> None:
        if files is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, files)

    proc = subprocess.Popen(
        [sys.executable, "-m", "functionlayer_server._cli", "serve", "--port", "0", *args],
        cwd=cwd,
        env=env,
        preexec_fn=limit_files if files is not None else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + SERVER_START
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                raise AssertionError(f"serve exited early: {''.join(lines)}")
            lines.append(line)
            if "Application startup complete" in line:
                break
        else:
            raise AssertionError(f"serve did not start: {''.join(lines)}")
        yield proc, "".join(lines)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _inbox_url(banner: str) -> str:
    for line in banner.splitlines():
        if line.strip().startswith("inbox:"):
            return line.split("inbox:", 1)[1].strip()
    raise AssertionError(f"no inbox URL in the banner: {banner}")


def test_version(tmp_path: Path) -> None:
    out = _cli("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.strip() == f"functionlayer-server {__version__}"
    assert __version__ == "0.4.0"


def test_admin_commands_refuse_to_create_a_database_unless_asked(tmp_path: Path) -> None:
    refused = _cli("tokens", "create", "agent", cwd=tmp_path)
    assert refused.returncode == 1
    default_db = tmp_path / "functionlayer.sqlite3"
    assert f"no database at {default_db}" in refused.stderr
    assert "--create" in refused.stderr
    assert not default_db.exists()
    assert refused.stdout == ""  # no token printed for a database nobody serves

    user = _cli(
        "users", "create", "alice", "--password-stdin", cwd=tmp_path, stdin="a long passphrase\n"
    )
    assert user.returncode == 1 and "--create" in user.stderr
    assert not default_db.exists()

    made = _cli("tokens", "create", "agent", "--create", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("fl_")
    assert f"# database: {default_db}" in made.stderr
    assert default_db.exists()

    # Now the database exists: no --create needed, and the command says which file it used.
    again = _cli(
        "users", "create", "alice", "--password-stdin", cwd=tmp_path, stdin="a long passphrase\n"
    )
    assert again.returncode == 0, again.stderr
    assert f"# database: {default_db}" in again.stderr

    relative = _cli(
        "tokens", "create", "b", "--database-url", "sqlite:///./functionlayer.sqlite3", cwd=tmp_path
    )
    assert relative.returncode == 0 and f"# database: {default_db}" in relative.stderr


def test_a_missing_directory_is_refused_and_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    url = f"sqlite:///{missing}/x.db"
    for args in (
        ("tokens", "create", "agent", "--create", "--database-url", url),
        ("users", "create", "bob", "--password-stdin", "--create", "--database-url", url),
        ("serve", "--port", "0", "--database-url", url),
    ):
        out = _cli(*args, cwd=tmp_path, stdin="a long passphrase\n")
        assert out.returncode == 1, (args, out.stderr)
        assert f"the directory {missing} does not exist" in out.stderr
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "nonexistent").exists()
    root = _cli(
        "tokens", "create", "a", "--create", "--database-url", "sqlite:////nonexistent/dir/x.db",
        cwd=tmp_path,
    )  # fmt: skip
    assert root.returncode == 1 and "/nonexistent/dir does not exist" in root.stderr
    assert not Path("/nonexistent").exists()


def test_serve_banner_second_serve_refused_busy_port_explained(tmp_path: Path) -> None:
    with _serving("--database-url", "sqlite:///data.sqlite3", cwd=tmp_path) as (_, banner):
        db = tmp_path / "data.sqlite3"
        assert f"database: {db}" in banner
        inbox = _inbox_url(banner)
        assert inbox.startswith("http://127.0.0.1:") and inbox.endswith("/inbox")
        port = int(inbox.split(":")[2].split("/")[0])
        assert f"FUNCTIONLAYER_API_BASE=http://127.0.0.1:{port}/functionlayer/v1" in banner
        # No user yet: the banner says what to do next, with this very database.
        assert "Next step" in banner
        assert f"users create alice --database-url sqlite:///{db}" in banner
        assert httpx.get(inbox.replace("/inbox", "/healthz"), timeout=10).json()["ok"] is True

        second = _cli("serve", "--port", "0", "--database-url", f"sqlite:///{db}", cwd=tmp_path)
        assert second.returncode == 1
        assert f"another functionlayer-server is already serving {db}" in second.stderr
        assert "Traceback" not in second.stderr

        busy = _cli("serve", "--port", str(port), "--database-url", "sqlite:///o.db", cwd=tmp_path)
        assert busy.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in busy.stderr
        assert "--port" in busy.stderr and "Traceback" not in busy.stderr

        # Admin commands work next to the running server.
        user = _cli(
            "users", "create", "alice", "--password-stdin", "--database-url", f"sqlite:///{db}",
            cwd=tmp_path, stdin="a long passphrase\n",
        )  # fmt: skip
        assert user.returncode == 0, user.stderr

    # Stopped: the lock is gone, the same file serves again, and with a user there is no
    # "next step" any more.
    with _serving("--database-url", "sqlite:///data.sqlite3", cwd=tmp_path) as (_, banner):
        assert "Next step" not in banner
        assert f"database: {tmp_path / 'data.sqlite3'}" in banner


def test_busy_port_on_another_socket(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = _cli("serve", "--port", str(port), cwd=tmp_path)
    assert out.returncode == 1
    assert "already in use" in out.stderr and "--port N" in out.stderr


def _open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open files limit")


def test_serve_raises_its_open_files_limit_to_the_hard_limit(tmp_path: Path) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 4096:
        hard = 4096  # a hard limit this process may set for its child
    with _serving("--database-url", "sqlite:///data.sqlite3", cwd=tmp_path, files=(1024, hard)) as (
        proc,
        banner,
    ):
        assert _open_files_limit(proc.pid) == hard
        assert f"open files: {hard} (raised from 1024)" in banner
    # At the hard limit already (a low one): the banner says how many agents can wait.
    with _serving("--database-url", "sqlite:///data.sqlite3", cwd=tmp_path, files=(2048, 2048)) as (
        proc,
        banner,
    ):
        assert _open_files_limit(proc.pid) == 2048
        assert "open files: 2048 (the hard limit): about 2048 agents can wait at once" in banner
