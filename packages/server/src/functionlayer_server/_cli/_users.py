"""``users create|link|list|disable``: the directory of people who decide, their identities
and projects, and their inbox logins."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Unpack

from functionlayer_server._accounts import MIN_PASSWORD_LENGTH, Links
from functionlayer_server._settings import Settings

from ._common import Subcommands, accounts_call, add_command, admin_settings, arg, command_group

__all__ = ["add_users", "create_user"]


async def create_user(
    settings: Settings,
    username: str,
    password: str | None,
    *,
    email: str | None = None,
    slack_user_id: str | None = None,
    **links: Unpack[Links],
) -> None:
    """Create a person of the directory (also used by tests), with an inbox login when a
    password is given, and link their identities."""
    emails = [*([email] if email else []), *links.get("emails", ())]
    slack_ids = [*([slack_user_id] if slack_user_id else []), *links.get("slack_ids", ())]
    await accounts_call(
        settings,
        "create_person",
        username,
        password=password,
        **{**links, "emails": emails, "slack_ids": slack_ids},
    )


def _read_password(args: argparse.Namespace, name: str) -> str | None:
    if getattr(args, "no_login", False):
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
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


def _identities(args: argparse.Namespace) -> Links:
    """The identities and projects given with ``--email``, ``--slack-id``... (each repeatable)."""
    return {
        "emails": args.email or [],
        "slack_ids": args.slack_id or [],
        "discord_ids": args.discord_id or [],
        "projects": args.project or [],
        "teams_ids": args.teams_id or [],
    }


def _users_create(args: argparse.Namespace) -> int:
    settings = admin_settings(args)  # before asking for a password
    password = _read_password(args, args.username)
    asyncio.run(create_user(settings, args.username, password, **_identities(args)))
    login = "without an inbox login" if password is None else "with an inbox login"
    print(f"person {args.username!r} saved {login}", file=sys.stderr)
    return 0


def _users_link(args: argparse.Namespace) -> int:
    asyncio.run(accounts_call(admin_settings(args), "link", args.username, **_identities(args)))
    print(f"linked to {args.username!r}", file=sys.stderr)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    persons = asyncio.run(accounts_call(admin_settings(args), "list_persons"))
    for p in persons:
        ids = [f"email:{e}" for e in sorted(p.emails)] + [f"slack:{s}" for s in sorted(p.slack_ids)]
        ids += [f"discord:{d}" for d in sorted(p.discord_ids)]
        ids += [f"teams:{t}" for t in sorted(p.teams_ids)]
        state = "disabled" if p.disabled else "active"
        print(f"{p.name}\t{state}\tprojects={','.join(sorted(p.projects))}\t{' '.join(ids)}")
    print(f"# {len(persons)} persons", file=sys.stderr)
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    asyncio.run(accounts_call(admin_settings(args), "disable", args.username, not args.enable))
    what = "enabled" if args.enable else "disabled (sessions ended; cannot decide)"
    print(f"{args.username!r} {what}", file=sys.stderr)
    return 0


IDENTITY_OPTIONS = (
    arg("username"),
    arg("--email", action="append", help="an email address (repeatable)"),
    arg("--slack-id", "--slack-user-id", action="append", help="a Slack user id (repeatable)"),
    arg("--discord-id", action="append", help="a Discord user id (repeatable)"),
    arg(
        "--teams-id",
        action="append",
        help="a Microsoft Teams user's Entra (AAD) object id (repeatable)",
    ),
    arg("--project", action="append", help="a project the person belongs to (repeatable)"),
)


def add_users(sub: Subcommands) -> None:
    users = command_group(sub, "users", "the directory of people who decide, and their identities")
    ucreate = add_command(
        users,
        "create",
        "create a person, or reset an existing person's password",
        _users_create,
        *IDENTITY_OPTIONS,
        create=True,
    )
    ucreate.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    ucreate.add_argument(
        "--no-login", action="store_true", help="no inbox login (Slack/email only)"
    )
    add_command(
        users,
        "link",
        "link more identities or projects to a person",
        _users_link,
        *IDENTITY_OPTIONS,
    )
    add_command(users, "list", "every person with their identities", _users_list)
    add_command(
        users,
        "disable",
        "disable a person: sessions end, cannot decide",
        _users_disable,
        arg("username"),
        arg("--enable", action="store_true", help="enable again"),
    )
