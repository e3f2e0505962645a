"""``audit export``: the audit trail as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from functionlayer_server._cli._common import (
    Subcommands,
    add_command,
    admin_settings,
    arg,
    command_group,
    open_service,
)
from functionlayer_server._settings import Settings

__all__ = ["add_audit", "export_audit"]


async def export_audit(
    settings: Settings, out: TextIO, *, project: str | None, since: float | None
) -> int:
    """Write the audit trail as JSON lines; returns how many lines."""
    from functionlayer_server._channels import audit_lines

    count = 0
    async with open_service(settings) as service:
        async for line in audit_lines(service, project=project, since=since):
            out.write(line)
            count += 1
    return count


def _audit_export(args: argparse.Namespace) -> int:
    count = asyncio.run(
        export_audit(admin_settings(args), sys.stdout, project=args.project, since=args.since)
    )
    print(f"# {count} audit entries", file=sys.stderr)
    return 0


def add_audit(sub: Subcommands) -> None:
    add_command(
        command_group(sub, "audit", "the audit trail"),
        "export",
        "print every audit entry as JSON lines",
        _audit_export,
        arg("--project", help="only this project's requests (default: all)"),
        arg("--since", type=float, help="only entries at or after this unix time"),
    )
