"""``grants list|revoke``: the grants of future calls that persons made."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from functionlayer_server._cli._common import (
    Subcommands,
    add_database_option,
    admin_settings,
    command_group,
    service_call,
)

__all__ = ["add_grants"]


def _grants_list(args: argparse.Namespace) -> int:
    grants = asyncio.run(
        service_call(
            admin_settings(args), "operator_grants", project=args.project, person=args.person
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
    grant = asyncio.run(service_call(admin_settings(args), "operator_revoke_grant", args.id))
    print(
        f"revoked grant {grant.id} ({grant.person}'s, {grant.fn}); refused from now on",
        file=sys.stderr,
    )
    return 0


def add_grants(sub: Subcommands) -> None:
    grants = command_group(
        sub, "grants", "grants of future calls that persons made (see docs/security.md)"
    )
    glist = grants.add_parser(
        "list", help="live grants: id, project, function, person, agents, uses, state, scope"
    )
    glist.add_argument("--project", help="only this project's grants")
    glist.add_argument("--person", help="only this person's grants")
    glist.add_argument(
        "--all", action="store_true", help="also revoked, expired and used-up grants"
    )
    glist.add_argument("--json", action="store_true", help="one JSON object per line")
    add_database_option(glist)
    glist.set_defaults(func=_grants_list)
    grevoke = grants.add_parser("revoke", help="revoke a grant, at once on every server")
    grevoke.add_argument("id")
    add_database_option(grevoke)
    grevoke.set_defaults(func=_grants_revoke)
