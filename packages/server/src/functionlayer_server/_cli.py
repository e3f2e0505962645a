"""``functionlayer-server``: serve, create API tokens, create inbox users.

Every command says which database it uses. Only ``serve`` (and ``--create``) may create a new
SQLite file, never a directory: a typo in ``--database-url`` must not leave an empty database
that the running server does not know about. One ``serve`` at a time per SQLite file (a lock
file next to it), and a busy port is named with the option that changes it.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from functionlayer_server import __version__
from functionlayer_server._errors import ServerError
from functionlayer_server._extras import MissingExtraError
from functionlayer_server._settings import Settings

__all__ = ["main"]


class CliError(Exception):
    """A refusal explained to the user: printed as ``error: ...``, exit status 1."""


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        public_url=getattr(args, "public_url", None),
        log_level=getattr(args, "log_level", None),
        policy_file=getattr(args, "policy_file", None),
        max_pending_per_token=getattr(args, "max_pending_per_token", None),
        max_long_polls_per_token=getattr(args, "max_long_polls_per_token", None),
    )


# -- which database --------------------------------------------------------------------------


def _masked(url: str) -> str:
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database URL; ``None`` for other databases."""
    if not url.startswith("sqlite:///"):
        return None
    from functionlayer_server._store._sqlite import sqlite_path

    raw = sqlite_path(url)
    return None if raw == ":memory:" else Path(raw).expanduser().resolve()


def database_location(url: str) -> str:
    """What the user should read: the absolute file for SQLite, the masked URL otherwise."""
    path = _sqlite_file(url)
    return str(path) if path is not None else _masked(url)


def check_database(url: str, *, create: bool) -> None:
    """Refuse a SQLite file in a missing directory, and a missing file unless ``create``."""
    path = _sqlite_file(url)
    if path is None:
        return
    if not path.parent.is_dir():
        raise CliError(
            f"the directory {path.parent} does not exist (database {path}); create it first "
            "or fix --database-url"
        )
    if not create and not path.exists():
        raise CliError(
            f"no database at {path}. Give the server's database with --database-url (or "
            "FUNCTIONLAYER_SERVER_DATABASE_URL), or pass --create to start a new one there"
        )


def _admin_settings(args: argparse.Namespace) -> Settings:
    """Settings for the token/user/audit commands: an existing database (or ``--create``)."""
    settings = _settings(args)
    check_database(settings.database_url, create=getattr(args, "create", False))
    print(f"# database: {database_location(settings.database_url)}", file=sys.stderr)
    return settings


# -- serve: one server per SQLite file, a port that is free, a banner --------------------------


def lock_database(url: str) -> IO[str] | None:
    """Hold an exclusive lock on ``<file>.lock`` for a SQLite database, for the process's
    lifetime (the returned file must stay open). PostgreSQL is shared on purpose: no lock."""
    path = _sqlite_file(url)
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
        path = _sqlite_file(settings.database_url)
        db = f" --database-url sqlite:///{path}" if path is not None else " --database-url ..."
        lines += [
            "Next step: nobody can sign in to the inbox yet. Create a user, and a token for "
            "your agent (FUNCTIONLAYER_API_TOKEN):",
            f"  functionlayer-server users create alice{db}",
            f"  functionlayer-server tokens create my-agent{db}",
        ]
    return "\n".join(lines)


async def _count_users(settings: Settings) -> int:
    service = await _with_service(settings)
    try:
        return len(await service.list_persons())
    finally:
        await service.stop()


async def _with_service(settings: Settings):  # type: ignore[no-untyped-def]
    from functionlayer_server._service import ApprovalService
    from functionlayer_server._store import open_store, prepare_database

    prepare_database(settings.database_url)
    service = ApprovalService(open_store(settings.database_url), settings)
    await service.start(scheduler=False)
    return service


async def create_token(
    settings: Settings, name: str, project: str = "default", *, approver: str | None = None
) -> str:
    """Create an API token (also used by tests); returns it in clear, once. With ``approver``
    the token decides as that person; without, it is an agent token (never decides)."""
    service = await _with_service(settings)
    try:
        token: str = await service.create_token(name, project=project, approver=approver)
        return token
    finally:
        await service.stop()


async def create_user(
    settings: Settings,
    username: str,
    password: str | None,
    *,
    email: str | None = None,
    slack_user_id: str | None = None,
    emails: Sequence[str] = (),
    slack_ids: Sequence[str] = (),
    discord_ids: Sequence[str] = (),
    projects: Sequence[str] = (),
    teams_ids: Sequence[str] = (),
) -> None:
    """Create a person of the directory (also used by tests), with an inbox login when a
    password is given, and link their identities."""
    service = await _with_service(settings)
    try:
        await service.accounts.create_person(
            username,
            password=password,
            emails=[*([email] if email else []), *emails],
            slack_ids=[*([slack_user_id] if slack_user_id else []), *slack_ids],
            discord_ids=list(discord_ids),
            projects=list(projects),
            teams_ids=list(teams_ids),
        )
    finally:
        await service.stop()


async def _accounts_call(settings: Settings, what: str, *args: Any, **kwargs: Any) -> Any:
    service = await _with_service(settings)
    try:
        return await getattr(service.accounts, what)(*args, **kwargs)
    finally:
        await service.stop()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from functionlayer_server._app import create_app

    settings = _settings(args)
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


def _tokens_create(args: argparse.Namespace) -> int:
    token = asyncio.run(
        create_token(_admin_settings(args), args.name, args.project, approver=args.approver)
    )
    print(token)
    role = (
        f"approver token {args.name!r}: decides as {args.approver!r} in project {args.project!r}"
        if args.approver
        else f"agent token {args.name!r} for project {args.project!r} (creates and reads "
        "requests; cannot decide); agents use it as FUNCTIONLAYER_API_TOKEN"
    )
    print(f"# {role}. It is shown only once.", file=sys.stderr)
    return 0


def _tokens_list(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    rows = asyncio.run(_accounts_call(_admin_settings(args), "list_tokens"))
    for row in rows:
        created = datetime.fromtimestamp(row.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        state = (
            "revoked " + datetime.fromtimestamp(row.revoked_at, UTC).strftime("%Y-%m-%d %H:%M")
            if row.revoked_at is not None
            else "active"
        )
        role = f"approver:{row.approver}" if row.role == "approver" else "agent"
        print(f"{row.name}\t{row.project}\t{role}\t{created}\t{state}")
    print(f"# {len(rows)} tokens", file=sys.stderr)
    return 0


def _tokens_revoke(args: argparse.Namespace) -> int:
    count = asyncio.run(_accounts_call(_admin_settings(args), "revoke_token", args.name))
    if not count:
        print(f"error: no active token named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {count} token(s) named {args.name!r}; refused from now on", file=sys.stderr)
    return 0


async def _service_call(settings: Settings, what: str, *args: Any, **kwargs: Any) -> Any:
    service = await _with_service(settings)
    try:
        return await getattr(service, what)(*args, **kwargs)
    finally:
        await service.stop()


def _grants_list(args: argparse.Namespace) -> int:
    import json
    import time

    grants = asyncio.run(
        _service_call(
            _admin_settings(args), "operator_grants", project=args.project, person=args.person
        )
    )
    now = time.time()
    shown = 0
    for grant in grants:
        data = grant.to_json(now)
        if not args.all and data["state"] != "live":
            continue
        shown += 1
        if args.json:
            print(json.dumps(data, sort_keys=True))
            continue
        agents = f"token:{grant.token_name or grant.token_id}" if grant.token_id else "project"
        print(
            f"{grant.id}\t{grant.project}\t{grant.fn}\t{grant.person}\t{agents}\t"
            f"{grant.uses}/{grant.max_uses}\t{data['state']}\t"
            f"{' AND '.join(c.text() for c in grant.scope)}"
        )
    print(f"# {shown} grants", file=sys.stderr)
    return 0


def _grants_revoke(args: argparse.Namespace) -> int:
    grant = asyncio.run(_service_call(_admin_settings(args), "operator_revoke_grant", args.id))
    print(
        f"revoked grant {grant.id} ({grant.person}'s, {grant.fn}); refused from now on",
        file=sys.stderr,
    )
    return 0


def _read_password(args: argparse.Namespace, name: str) -> str | None:
    if getattr(args, "no_login", False):
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    from functionlayer_server._accounts import MIN_PASSWORD_LENGTH

    for _ in range(3):  # the length is checked at once, not after typing it twice
        password = getpass.getpass(
            f"Password for {name} (at least {MIN_PASSWORD_LENGTH} characters): "
        )
        if len(password) >= MIN_PASSWORD_LENGTH:
            break
        print(
            f"too short ({len(password)} characters): the password must be at least "
            f"{MIN_PASSWORD_LENGTH} characters",
            file=sys.stderr,
        )
    else:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password != getpass.getpass("Repeat it: "):
        raise ValueError("the passwords differ")
    return password


def _users_create(args: argparse.Namespace) -> int:
    settings = _admin_settings(args)  # before asking for a password
    password = _read_password(args, args.username)
    asyncio.run(
        create_user(
            settings,
            args.username,
            password,
            emails=args.email or [],
            slack_ids=args.slack_id or [],
            discord_ids=args.discord_id or [],
            projects=args.project or [],
            teams_ids=args.teams_id or [],
        )
    )
    login = "without an inbox login" if password is None else "with an inbox login"
    print(f"person {args.username!r} saved {login}", file=sys.stderr)
    return 0


def _users_link(args: argparse.Namespace) -> int:
    asyncio.run(
        _accounts_call(
            _admin_settings(args),
            "link",
            args.username,
            emails=args.email or [],
            slack_ids=args.slack_id or [],
            discord_ids=args.discord_id or [],
            projects=args.project or [],
            teams_ids=args.teams_id or [],
        )
    )
    print(f"linked to {args.username!r}", file=sys.stderr)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    persons = asyncio.run(_accounts_call(_admin_settings(args), "list_persons"))
    for p in persons:
        ids = [f"email:{e}" for e in sorted(p.emails)] + [f"slack:{s}" for s in sorted(p.slack_ids)]
        ids += [f"discord:{d}" for d in sorted(p.discord_ids)]
        ids += [f"teams:{t}" for t in sorted(p.teams_ids)]
        state = "disabled" if p.disabled else "active"
        print(f"{p.name}\t{state}\tprojects={','.join(sorted(p.projects))}\t{' '.join(ids)}")
    print(f"# {len(persons)} persons", file=sys.stderr)
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    asyncio.run(_accounts_call(_admin_settings(args), "disable", args.username, not args.enable))
    what = "enabled" if args.enable else "disabled (sessions ended; cannot decide)"
    print(f"{args.username!r} {what}", file=sys.stderr)
    return 0


async def export_audit(
    settings: Settings, out: TextIO, *, project: str | None, since: float | None
) -> int:
    """Write the audit trail as JSON lines; returns how many lines."""
    from functionlayer_server._channels import audit_lines

    service = await _with_service(settings)
    count = 0
    try:
        async for line in audit_lines(service, project=project, since=since):
            out.write(line)
            count += 1
    finally:
        await service.stop()
    return count


def _audit_export(args: argparse.Namespace) -> int:
    count = asyncio.run(
        export_audit(_admin_settings(args), sys.stdout, project=args.project, since=args.since)
    )
    print(f"# {count} audit entries", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="functionlayer-server",
        description="The FunctionLayer approval server. Options override FUNCTIONLAYER_SERVER_* "
        "environment variables.",
    )
    parser.add_argument(
        "--version", action="version", version=f"functionlayer-server {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def db(p: argparse.ArgumentParser, *, create: bool = False) -> None:
        p.add_argument(
            "--database-url",
            help="sqlite:///path.sqlite3 (default sqlite:///./functionlayer.sqlite3) or postgresql://...",
        )
        if create:
            p.add_argument(
                "--create",
                action="store_true",
                help="create the SQLite database if it does not exist (never its directory)",
            )

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--public-url", help="how humans reach this server (for links)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    serve.add_argument(
        "--policy-file", help="the operator's routing and policy rules (TOML; docs/security.md)"
    )
    serve.add_argument(
        "--max-pending-per-token",
        type=int,
        metavar="N",
        help="pending requests one agent token may have at once (default 200; 0: no limit)",
    )
    serve.add_argument(
        "--max-long-polls-per-token",
        type=int,
        metavar="N",
        help="long-polls one token may hold open at once (default 100; 0: no limit)",
    )
    db(serve)
    serve.set_defaults(func=_serve)

    tokens = sub.add_parser("tokens", help="API tokens for agents").add_subparsers(
        dest="tokens_command", required=True
    )
    tcreate = tokens.add_parser("create", help="create a token and print it (once)")
    tcreate.add_argument("name", help="a label, e.g. the agent's name")
    tcreate.add_argument(
        "--project", default="default", help="tokens see only their project's requests"
    )
    tcreate.add_argument(
        "--approver",
        metavar="USER",
        help="make an approver token that decides as this person (agent tokens never decide)",
    )
    db(tcreate, create=True)
    tcreate.set_defaults(func=_tokens_create)
    tlist = tokens.add_parser("list", help="every token: name, project, role, created, state")
    db(tlist)
    tlist.set_defaults(func=_tokens_list)
    trevoke = tokens.add_parser("revoke", help="revoke the tokens with this name, at once")
    trevoke.add_argument("name")
    db(trevoke)
    trevoke.set_defaults(func=_tokens_revoke)

    users = sub.add_parser(
        "users", help="the directory of people who decide, and their identities"
    ).add_subparsers(dest="users_command", required=True)

    def identities(p: argparse.ArgumentParser, *, create: bool = False) -> None:
        p.add_argument("username")
        p.add_argument("--email", action="append", help="an email address (repeatable)")
        p.add_argument(
            "--slack-id", "--slack-user-id", action="append", help="a Slack user id (repeatable)"
        )
        p.add_argument("--discord-id", action="append", help="a Discord user id (repeatable)")
        p.add_argument(
            "--teams-id",
            action="append",
            help="a Microsoft Teams user's Entra (AAD) object id (repeatable)",
        )
        p.add_argument(
            "--project", action="append", help="a project the person belongs to (repeatable)"
        )
        db(p, create=create)

    ucreate = users.add_parser(
        "create", help="create a person, or reset an existing person's password"
    )
    identities(ucreate, create=True)
    ucreate.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    ucreate.add_argument(
        "--no-login", action="store_true", help="no inbox login (Slack/email only)"
    )
    ucreate.set_defaults(func=_users_create)
    ulink = users.add_parser("link", help="link more identities or projects to a person")
    identities(ulink)
    ulink.set_defaults(func=_users_link)
    ulist = users.add_parser("list", help="every person with their identities")
    db(ulist)
    ulist.set_defaults(func=_users_list)
    udisable = users.add_parser("disable", help="disable a person: sessions end, cannot decide")
    udisable.add_argument("username")
    udisable.add_argument("--enable", action="store_true", help="enable again")
    db(udisable)
    udisable.set_defaults(func=_users_disable)

    grants = sub.add_parser(
        "grants", help="grants of future calls that persons made (see docs/security.md)"
    ).add_subparsers(dest="grants_command", required=True)
    glist = grants.add_parser(
        "list", help="live grants: id, project, function, person, agents, uses, state, scope"
    )
    glist.add_argument("--project", help="only this project's grants")
    glist.add_argument("--person", help="only this person's grants")
    glist.add_argument(
        "--all", action="store_true", help="also revoked, expired and used-up grants"
    )
    glist.add_argument("--json", action="store_true", help="one JSON object per line")
    db(glist)
    glist.set_defaults(func=_grants_list)
    grevoke = grants.add_parser("revoke", help="revoke a grant, at once on every server")
    grevoke.add_argument("id")
    db(grevoke)
    grevoke.set_defaults(func=_grants_revoke)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    aexport = audit.add_parser("export", help="print every audit entry as JSON lines")
    aexport.add_argument("--project", help="only this project's requests (default: all)")
    aexport.add_argument("--since", type=float, help="only entries at or after this unix time")
    db(aexport)
    aexport.set_defaults(func=_audit_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (CliError, MissingExtraError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
