"""``functionlayer-server``: serve, create API tokens, create inbox users.

Every command says which database it uses. Only ``serve`` (and ``--create``) may create a new
SQLite file, never a directory: a typo in ``--database-url`` must not leave an empty database
that the running server does not know about. One ``serve`` at a time per SQLite file (a lock
file next to it), and a busy port is named with the option that changes it.

One module per command group: ``_serve``, ``_tokens``, ``_users``, ``_grants``, ``_audit``;
what they share (which database, a service for one command) is in ``_common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from functionlayer_server import __version__
from functionlayer_server._cli._audit import add_audit, export_audit
from functionlayer_server._cli._common import (
    CliError,
    accounts_call,
    check_database,
    database_location,
    service_call,
    settings_of,
    with_service,
)
from functionlayer_server._cli._grants import add_grants
from functionlayer_server._cli._serve import (
    add_serve,
    banner,
    bind_socket,
    lock_database,
    raise_open_files,
)
from functionlayer_server._cli._tokens import add_tokens, create_token
from functionlayer_server._cli._users import add_users, create_user
from functionlayer_server._errors import ServerError
from functionlayer_server._extras import MissingExtraError

__all__ = [
    "CliError",
    "banner",
    "bind_socket",
    "check_database",
    "create_token",
    "create_user",
    "database_location",
    "export_audit",
    "lock_database",
    "main",
    "parser",
    "raise_open_files",
]

# The names tests and older callers import (the module's private helpers before the split).
_with_service = with_service
_accounts_call = accounts_call
_service_call = service_call
_settings = settings_of


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="functionlayer-server",
        description="The FunctionLayer approval server. Options override FUNCTIONLAYER_SERVER_* "
        "environment variables.",
    )
    parser.add_argument(
        "--version", action="version", version=f"functionlayer-server {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_serve, add_tokens, add_users, add_grants, add_audit):
        add(sub)
    return parser


_parser = parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (CliError, MissingExtraError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return result
