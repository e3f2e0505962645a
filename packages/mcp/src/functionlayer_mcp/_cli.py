"""``functionlayer-mcp``: the gateway (``proxy``) and the permission-prompt tool.

stdout is the MCP stream in both commands: everything for the operator goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from functionlayer_mcp._approval import TerminalUnavailableError, warn
from functionlayer_mcp._config import ConfigError, GatewayConfig, UpstreamConfig, load_config

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="functionlayer-mcp",
        description="FunctionLayer approvals for any MCP tool.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    proxy = sub.add_parser(
        "proxy",
        help="serve an upstream MCP server's tools on stdio, gating the configured ones",
        usage="functionlayer-mcp proxy [--config FILE] [--url URL] [-- COMMAND [ARG ...]]",
    )
    proxy.add_argument("--config", help="the gateway's TOML file (see the README)")
    proxy.add_argument("--url", help="a streamable-HTTP upstream instead of a command")
    proxy.add_argument("--tty", help="the terminal device to prompt on (default /dev/tty)")
    proxy.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an HTTP header for a --url upstream (repeatable)",
    )

    prompt = sub.add_parser(
        "permission-prompt",
        help="serve the request_permission tool (Claude Code's --permission-prompt-tool)",
    )
    prompt.add_argument("--config", help="a TOML file whose [approval] table is used")
    prompt.add_argument("--backend", choices=["auto", "server", "terminal"])
    prompt.add_argument("--timeout", type=float, help="seconds before a request expires")
    prompt.add_argument("--tty", help="the terminal device to prompt on (default /dev/tty)")
    prompt.add_argument("--users", help="comma-separated web-inbox users to route the requests to")
    return parser


def _proxy_config(args: argparse.Namespace, command: list[str]) -> GatewayConfig:
    config = load_config(args.config)
    upstream = config.upstream
    if command or args.url:
        if command and args.url:
            raise ConfigError("give either --url or a command after --, not both")
        headers = dict(upstream.headers)
        for item in args.header:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"--header needs NAME=VALUE, got {item!r}")
            headers[name.strip()] = value
        upstream = UpstreamConfig(
            command=command or None,
            url=args.url,
            env=upstream.env,
            cwd=upstream.cwd,
            headers=headers,
        )
        config = config.model_copy(update={"upstream": upstream})
    if args.tty:
        approval = config.approval.model_copy(update={"tty": args.tty})
        config = config.model_copy(update={"approval": approval})
    if not config.upstream.configured:
        raise ConfigError(
            "no upstream MCP server: put its command after -- (functionlayer-mcp proxy "
            "--config gateway.toml -- python server.py), pass --url, or set [upstream] in the "
            "configuration"
        )
    if not config.gate:
        warn("no [[gate]] in the configuration: every tool call passes straight through")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(argv)
    try:
        if args.command == "proxy":
            from functionlayer_mcp._gateway import run_gateway

            config = _proxy_config(args, command)
            stopped_by = anyio.run(lambda: run_gateway(config))
            return 0 if stopped_by is None else 128 + stopped_by
        if command:
            raise ConfigError("permission-prompt takes no command after --")
        from functionlayer_mcp._permission import run_permission_prompt

        approval = load_config(args.config).approval
        users = [u.strip() for u in args.users.split(",") if u.strip()] if args.users else None
        timeout = args.timeout if args.timeout is not None else approval.timeout_seconds
        if timeout <= 0:
            raise ConfigError("--timeout must be a positive number of seconds")
        stopped_by = anyio.run(
            lambda: run_permission_prompt(
                backend=args.backend or approval.backend,
                timeout=timeout,
                users=users or approval.users,
                tty=args.tty or approval.tty,
            )
        )
        return 0 if stopped_by is None else 128 + stopped_by
    except (ConfigError, TerminalUnavailableError, ValueError) as exc:
        warn(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the upstream failed to start, or died: say so on stderr
        warn(f"stopped: {_describe(exc)}")
        return 1


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
