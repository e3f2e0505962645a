"""``grants list|revoke``: the grants of future calls that persons made."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from functionlayer_server._cli._common import (
    Subcommands,
    add_command,
    admin_settings,
    arg,
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
    add_command(
        grants,
        "list",
        "live grants: id, project, function, person, agents, uses, state, scope",
        _grants_list,
        arg("--project", help="only this project's grants"),
        arg("--person", help="only this person's grants"),
        arg("--all", action="store_true", help="also revoked, expired and used-up grants"),
        arg("--json", action="store_true", help="one JSON object per line"),
    )
    add_command(
        grants, "revoke", "revoke a grant, at once on every server", _grants_revoke, arg("id")
    )
