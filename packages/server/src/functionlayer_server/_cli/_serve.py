"""``serve``: one server per SQLite file, a port that is free, a banner."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from typing import IO

from functionlayer_server import __version__
from functionlayer_server._cli._common import (
    CliError,
    Subcommands,
    add_command,
    arg,
    check_database,
    database_location,
    open_service,
    settings_of,
    sqlite_file,
)
from functionlayer_server._extras import MissingExtraError
from functionlayer_server._settings import Settings

__all__ = ["add_serve", "banner", "bind_socket", "lock_database", "raise_open_files"]


def lock_database(url: str) -> IO[str] | None:
    """Hold an exclusive lock on ``<file>.lock`` for a SQLite database, for the process's
    lifetime (the returned file must stay open). PostgreSQL is shared on purpose: no lock."""
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    lock_path = path.with_name(path.name + ".lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 - kept open while serving
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (process {holder})" if holder else ""
        raise CliError(
            f"another functionlayer-server is already serving {path}{who}: stop it first, or "
            "give this one another --database-url"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen on ``host:port`` now, so a busy port is explained before anything starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host!r}: {exc}; fix --host") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is already in use (another server?): choose another "
                "with --port N (or FUNCTIONLAYER_SERVER_PORT)"
            ) from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host") from None
    sock.set_inheritable(True)
    return sock


def raise_open_files() -> str:
    """Raise this process's soft limit of open files to its hard limit: every waiting agent's
    long-poll holds a connection (one file), and a soft limit of 1,024 would let about a
    thousand of them lock everyone else out. Returns the banner line saying what it is."""
    try:
        import resource
    except ImportError:  # not POSIX
        return ""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        target = max(soft, 1_048_576) if soft != resource.RLIM_INFINITY else soft
    else:
        target = hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            return (
                f"  open files: {soft} (could not raise it to {target}: {exc}); about {soft} "
                "agents can wait at once: raise 'ulimit -n'"
            )
        return f"  open files: {target} (raised from {soft})"
    if soft != resource.RLIM_INFINITY and soft < 10_000:
        return (
            f"  open files: {soft} (the hard limit): about {soft} agents can wait at once; raise "
            "'ulimit -Hn' for more"
        )
    return f"  open files: {'unlimited' if soft == resource.RLIM_INFINITY else soft}"


def banner(settings: Settings, *, users: int, files: str = "") -> str:
    """What a person starting the server needs: where the data is, where to go, what next."""
    from functionlayer_server._api import API_PREFIX

    base = settings.base_url
    if not settings.public_url and settings.host in ("0.0.0.0", "::", ""):
        base = f"http://127.0.0.1:{settings.port}"
    lines = [
        f"FunctionLayer server {__version__}",
        f"  database: {database_location(settings.database_url)}",
        f"  inbox:    {base}/inbox",
        f"  agents:   FUNCTIONLAYER_API_BASE={base}{API_PREFIX}",
    ]
    if files:
        lines.append(files)
    if users == 0:
        path = sqlite_file(settings.database_url)
        db = f" --database-url sqlite:///{path}" if path is not None else " --database-url ..."
        lines += [
            "Next step: nobody can sign in to the inbox yet. Create a user, and a token for "
            "your agent (FUNCTIONLAYER_API_TOKEN):",
            f"  functionlayer-server users create alice{db}",
            f"  functionlayer-server tokens create my-agent{db}",
        ]
    return "\n".join(lines)


async def _count_users(settings: Settings) -> int:
    async with open_service(settings) as service:
        return len(await service.list_persons())


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from functionlayer_server._app import create_app

    settings = settings_of(args)
    check_database(settings.database_url, create=True)
    lock = lock_database(settings.database_url)
    sock = bind_socket(settings.host, settings.port)
    try:
        settings.port = sock.getsockname()[1]  # the real one when --port 0
        try:
            app = create_app(settings)
            users = asyncio.run(_count_users(settings))
        except MissingExtraError as exc:  # e.g. PostgreSQL or Slack configured, extra missing
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # an unreachable database, a bad URL, a read-only file, ...
            where = database_location(settings.database_url)
            print(f"error: cannot open the database {where!r}: {exc}", file=sys.stderr)
            return 1
        files = raise_open_files()
        print(banner(settings, users=users, files=files), file=sys.stderr, flush=True)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            backlog=4096,  # many agents connecting at once (capped by net.core.somaxconn)
            log_level=settings.log_level,
            access_log=args.access_log,
            timeout_graceful_shutdown=3,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if lock is not None:
            lock.close()
    return 0


def add_serve(sub: Subcommands) -> None:
    add_command(
        sub,
        "serve",
        "run the server",
        _serve,
        arg("--host", help="interface to bind (default 127.0.0.1)"),
        arg("--port", type=int, help="port (default 8080)"),
        arg("--public-url", help="how humans reach this server (for links)"),
        arg("--log-level", choices=["critical", "error", "warning", "info", "debug"]),
        arg("--access-log", action="store_true", help="log every HTTP request"),
        arg(
            "--policy-file", help="the operator's routing and policy rules (TOML; docs/security.md)"
        ),
        arg(
            "--max-pending-per-token",
            type=int,
            metavar="N",
            help="pending requests one agent token may have at once (default 200; 0: no limit)",
        ),
        arg(
            "--max-long-polls-per-token",
            type=int,
            metavar="N",
            help="long-polls one token may hold open at once (default 100; 0: no limit)",
        ),
    )
