"""Optional dependencies, imported only when the feature that needs them is configured.

``pip install functionlayer-server`` serves SQLite, the web inbox, email and webhooks. PostgreSQL
needs ``[postgres]`` (psycopg) and Slack ``[slack]`` (slack_sdk, aiohttp): without them the server
still starts, and configuring the feature fails with the command that installs the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "require_extra"]

EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    # extra: (what needs it, top-level modules it provides)
    "postgres": ("PostgreSQL storage", ("psycopg",)),
    "slack": ("the Slack channel", ("slack_sdk", "aiohttp")),
    "discord": ("the Discord channel", ("nacl",)),
    "teams": ("the Microsoft Teams channel", ("jwt", "cryptography")),
}


class MissingExtraError(RuntimeError):
    """A configured feature needs an extra that is not installed."""

    def __init__(self, extra: str, missing: str) -> None:
        feature = EXTRAS[extra][0]
        super().__init__(
            f"{feature} needs the Python package {missing!r}, which is not installed: "
            f"pip install 'functionlayer-server[{extra}]'"
        )
        self.extra = extra
        self.missing = missing


def require_extra(extra: str, module: str) -> ModuleType:
    """Import ``module`` (one of ours that needs ``extra``), or explain which extra is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in EXTRAS[extra][1]:
            raise MissingExtraError(extra, top) from exc
        raise
