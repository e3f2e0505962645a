"""``functionlayer-server``: serve, create API tokens, create inbox users."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Sequence
from typing import TextIO

from functionlayer_server._settings import Settings

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        public_url=getattr(args, "public_url", None),
        log_level=getattr(args, "log_level", None),
    )


async def _with_service(settings: Settings):  # type: ignore[no-untyped-def]
    from functionlayer_server._service import ApprovalService
    from functionlayer_server._store import open_store, prepare_database

    prepare_database(settings.database_url)
    service = ApprovalService(open_store(settings.database_url), settings)
    await service.start(scheduler=False)
    return service


async def create_token(settings: Settings, name: str, project: str = "default") -> str:
    """Create an API token (also used by tests); returns it in clear, once."""
    service = await _with_service(settings)
    try:
        return await service.create_token(name, project=project)
    finally:
        await service.stop()


async def create_user(
    settings: Settings,
    username: str,
    password: str,
    *,
    email: str | None = None,
    slack_user_id: str | None = None,
) -> None:
    service = await _with_service(settings)
    try:
        await service.create_user(username, password, email=email, slack_user_id=slack_user_id)
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
    token = asyncio.run(create_token(_settings(args), args.name, args.project))
    print(token)
    print(
        f"# API token {args.name!r} for project {args.project!r}. It is shown only once; "
        "agents use it as FUNCTIONLAYER_API_TOKEN.",
        file=sys.stderr,
    )
    return 0


def _users_create(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if password != getpass.getpass("Repeat it: "):
            print("error: the passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("error: the password must not be empty", file=sys.stderr)
        return 2
    asyncio.run(
        create_user(
            _settings(args),
            args.username,
            password,
            email=args.email,
            slack_user_id=args.slack_user_id,
        )
    )
    print(f"user {args.username!r} saved", file=sys.stderr)
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
    db(tcreate)
    tcreate.set_defaults(func=_tokens_create)

    users = sub.add_parser("users", help="people who answer in the web inbox").add_subparsers(
        dest="users_command", required=True
    )
    ucreate = users.add_parser("create", help="create a user, or reset an existing user's password")
    ucreate.add_argument("username")
    ucreate.add_argument("--email")
    ucreate.add_argument("--slack-user-id")
    ucreate.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    db(ucreate)
    ucreate.set_defaults(func=_users_create)

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
    return result


if __name__ == "__main__":
    sys.exit(main())
