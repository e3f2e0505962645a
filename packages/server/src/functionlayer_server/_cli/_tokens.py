"""``tokens create|list|revoke``: API tokens for agents (and approver tokens for persons)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from functionlayer_server._settings import Settings

from ._common import Subcommands, accounts_call, add_command, admin_settings, arg, command_group

__all__ = ["add_tokens", "create_token"]


async def create_token(
    settings: Settings, name: str, project: str = "default", *, approver: str | None = None
) -> str:
    """Create an API token (also used by tests); returns it in clear, once. With ``approver``
    the token decides as that person; without, it is an agent token (never decides)."""
    token: str = await accounts_call(
        settings, "create_token", name, project=project, approver=approver
    )
    return token


def _tokens_create(args: argparse.Namespace) -> int:
    token = asyncio.run(
        create_token(admin_settings(args), args.name, args.project, approver=args.approver)
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


def _minute(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


def _tokens_list(args: argparse.Namespace) -> int:
    rows = asyncio.run(accounts_call(admin_settings(args), "list_tokens"))
    for row in rows:
        state = "revoked " + _minute(row.revoked_at) if row.revoked_at is not None else "active"
        role = f"approver:{row.approver}" if row.role == "approver" else "agent"
        print(f"{row.name}\t{row.project}\t{role}\t{_minute(row.created_at)}\t{state}")
    print(f"# {len(rows)} tokens", file=sys.stderr)
    return 0


def _tokens_revoke(args: argparse.Namespace) -> int:
    count = asyncio.run(accounts_call(admin_settings(args), "revoke_token", args.name))
    if not count:
        print(f"error: no active token named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {count} token(s) named {args.name!r}; refused from now on", file=sys.stderr)
    return 0


def add_tokens(sub: Subcommands) -> None:
    tokens = command_group(sub, "tokens", "API tokens for agents")
    add_command(
        tokens,
        "create",
        "create a token and print it (once)",
        _tokens_create,
        arg("name", help="a label, e.g. the agent's name"),
        arg("--project", default="default", help="tokens see only their project's requests"),
        arg(
            "--approver",
            metavar="USER",
            help="make an approver token that decides as this person (agent tokens never decide)",
        ),
        create=True,
    )
    add_command(tokens, "list", "every token: name, project, role, created, state", _tokens_list)
    add_command(
        tokens,
        "revoke",
        "revoke the tokens with this name, at once",
        _tokens_revoke,
        arg("name"),
    )
