"""What every command shares: the refusal error, the settings from the options, which
database (and refusing a mistyped one), and a service opened for one command."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias

from functionlayer_server._settings import Settings

__all__ = [
    "Argument",
    "CliError",
    "Subcommands",
    "accounts_call",
    "add_command",
    "add_database_option",
    "admin_settings",
    "arg",
    "check_database",
    "command_group",
    "database_location",
    "open_service",
    "service_call",
    "settings_of",
    "sqlite_file",
    "with_service",
]


# What add_subparsers returns (argparse gives it no public name).
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(Exception):
    """A refusal explained to the user: printed as ``error: ...``, exit status 1."""


def settings_of(args: argparse.Namespace) -> Settings:
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


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database URL; ``None`` for other databases."""
    if not url.startswith("sqlite:///"):
        return None
    from functionlayer_server._store._sqlite import sqlite_path

    raw = sqlite_path(url)
    return None if raw == ":memory:" else Path(raw).expanduser().resolve()


def database_location(url: str) -> str:
    """What the user should read: the absolute file for SQLite, the masked URL otherwise."""
    path = sqlite_file(url)
    return str(path) if path is not None else _masked(url)


def check_database(url: str, *, create: bool) -> None:
    """Refuse a SQLite file in a missing directory, and a missing file unless ``create``."""
    path = sqlite_file(url)
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


def admin_settings(args: argparse.Namespace) -> Settings:
    """Settings for the token/user/audit commands: an existing database (or ``--create``)."""
    settings = settings_of(args)
    check_database(settings.database_url, create=getattr(args, "create", False))
    print(f"# database: {database_location(settings.database_url)}", file=sys.stderr)
    return settings


# -- the parser's shared parts -----------------------------------------------------------------


def add_database_option(p: argparse.ArgumentParser, *, create: bool = False) -> None:
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


Argument = tuple[tuple[str, ...], dict[str, Any]]
"""An option or positional argument: ``add_argument``'s flags and keywords."""


def arg(*flags: str, **options: Any) -> Argument:
    return flags, options


def add_command(
    group: Subcommands,
    name: str,
    help: str,
    func: Callable[[argparse.Namespace], int],
    *arguments: Argument,
    create: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand running ``func``: its ``arguments``, then the database options."""
    command: argparse.ArgumentParser = group.add_parser(name, help=help)
    for flags, options in arguments:
        command.add_argument(*flags, **options)
    add_database_option(command, create=create)
    command.set_defaults(func=func)
    return command


def command_group(sub: Subcommands, name: str, help: str) -> Subcommands:
    """A command with subcommands (``tokens create``, ``users list``...), one required."""
    group: Subcommands = sub.add_parser(name, help=help).add_subparsers(
        dest=f"{name}_command", required=True
    )
    return group


# -- a service for one command -----------------------------------------------------------------


async def with_service(settings: Settings):  # type: ignore[no-untyped-def]
    from functionlayer_server._service import ApprovalService
    from functionlayer_server._store import open_store, prepare_database

    prepare_database(settings.database_url)
    service = ApprovalService(open_store(settings.database_url), settings)
    await service.start(scheduler=False)
    return service


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Any]:
    """A started service (without its scheduler), stopped after the block."""
    service = await with_service(settings)
    try:
        yield service
    finally:
        await service.stop()


async def service_call(settings: Settings, what: str, *args: Any, **kwargs: Any) -> Any:
    async with open_service(settings) as service:
        return await getattr(service, what)(*args, **kwargs)


async def accounts_call(settings: Settings, what: str, *args: Any, **kwargs: Any) -> Any:
    async with open_service(settings) as service:
        return await getattr(service.accounts, what)(*args, **kwargs)
