"""``functionlayer-server``: serve, create API tokens, create inbox users."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from functionlayer_server._errors import ServerError
from functionlayer_server._settings import Settings

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        public_url=getattr(args, "public_url", None),
        log_level=getattr(args, "log_level", None),
        policy_file=getattr(args, "policy_file", None),
    )


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
        return await service.create_token(name, project=project, approver=approver)
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
    try:
        app = create_app(settings)
    except Exception as exc:  # an unreachable database, a bad URL, a read-only file, ...
        where = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", settings.database_url)
        print(f"error: cannot open the database {where!r}: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=3,
    )
    return 0


def _tokens_create(args: argparse.Namespace) -> int:
    token = asyncio.run(
        create_token(_settings(args), args.name, args.project, approver=args.approver)
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

    rows = asyncio.run(_accounts_call(_settings(args), "list_tokens"))
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
    count = asyncio.run(_accounts_call(_settings(args), "revoke_token", args.name))
    if not count:
        print(f"error: no active token named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {count} token(s) named {args.name!r}; refused from now on", file=sys.stderr)
    return 0


def _read_password(args: argparse.Namespace, name: str) -> str | None:
    if getattr(args, "no_login", False):
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"Password for {name}: ")
    if password != getpass.getpass("Repeat it: "):
        raise ValueError("the passwords differ")
    return password


def _users_create(args: argparse.Namespace) -> int:
    password = _read_password(args, args.username)
    asyncio.run(
        create_user(
            _settings(args),
            args.username,
            password,
            emails=args.email or [],
            slack_ids=args.slack_id or [],
            discord_ids=args.discord_id or [],
            projects=args.project or [],
        )
    )
    login = "without an inbox login" if password is None else "with an inbox login"
    print(f"person {args.username!r} saved {login}", file=sys.stderr)
    return 0


def _users_link(args: argparse.Namespace) -> int:
    asyncio.run(
        _accounts_call(
            _settings(args),
            "link",
            args.username,
            emails=args.email or [],
            slack_ids=args.slack_id or [],
            discord_ids=args.discord_id or [],
            projects=args.project or [],
        )
    )
    print(f"linked to {args.username!r}", file=sys.stderr)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    persons = asyncio.run(_accounts_call(_settings(args), "list_persons"))
    for p in persons:
        ids = [f"email:{e}" for e in sorted(p.emails)] + [f"slack:{s}" for s in sorted(p.slack_ids)]
        ids += [f"discord:{d}" for d in sorted(p.discord_ids)]
        state = "disabled" if p.disabled else "active"
        print(f"{p.name}\t{state}\tprojects={','.join(sorted(p.projects))}\t{' '.join(ids)}")
    print(f"# {len(persons)} persons", file=sys.stderr)
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    asyncio.run(_accounts_call(_settings(args), "disable", args.username, not args.enable))
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
        export_audit(_settings(args), sys.stdout, project=args.project, since=args.since)
    )
    print(f"# {count} audit entries", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="functionlayer-server",
        description="The FunctionLayer approval server. Options override FUNCTIONLAYER_SERVER_* "
        "environment variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def db(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url",
            help="sqlite:///path.sqlite3 (default sqlite:///./functionlayer.sqlite3) or postgresql://...",
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
    db(tcreate)
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

    def identities(p: argparse.ArgumentParser) -> None:
        p.add_argument("username")
        p.add_argument("--email", action="append", help="an email address (repeatable)")
        p.add_argument(
            "--slack-id", "--slack-user-id", action="append", help="a Slack user id (repeatable)"
        )
        p.add_argument("--discord-id", action="append", help="a Discord user id (repeatable)")
        p.add_argument(
            "--project", action="append", help="a project the person belongs to (repeatable)"
        )
        db(p)

    ucreate = users.add_parser(
        "create", help="create a person, or reset an existing person's password"
    )
    identities(ucreate)
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
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
