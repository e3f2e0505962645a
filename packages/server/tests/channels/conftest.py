"""Shared fixtures for channel tests: the local doubles of Slack's, Discord's and Teams' APIs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest

from packages.server.tests.channels._double_base import LocalDouble
from packages.server.tests.channels.discord_double import DiscordDouble
from packages.server.tests.channels.slack_double import SlackDouble
from packages.server.tests.channels.teams_double import TeamsDouble
from tests._support.mail import Mailbox, smtp_mailbox

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-server-token"


def slack_env(double: SlackDouble, **extra: str) -> dict[str, str]:
    """Environment for ``server_factory``: Slack on, pointed at the double."""
    env = {
        "FUNCTIONLAYER_SERVER_SLACK_BOT_TOKEN": BOT_TOKEN,
        "FUNCTIONLAYER_SERVER_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "FUNCTIONLAYER_SERVER_SLACK_API_URL": double.api_url,
        "FUNCTIONLAYER_SERVER_SCHEDULER_INTERVAL_SECONDS": "0.2",
    }
    env.update(extra)
    return env


def _double_fixture(
    kind: type[LocalDouble[Any]], name: str, scope: Literal["function", "module"] = "function"
) -> Any:
    """A fixture ``name``: a running double of ``kind`` for the test (or ``scope``)."""

    def running() -> Iterator[LocalDouble[Any]]:
        with kind() as double:
            yield double

    return pytest.fixture(running, scope=scope, name=name)


slack_double = _double_fixture(SlackDouble, "slack_double")
module_slack_double = _double_fixture(SlackDouble, "module_slack_double", scope="module")
discord_double = _double_fixture(DiscordDouble, "discord_double")
teams_double = _double_fixture(TeamsDouble, "teams_double")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server for the module, and its port."""
    with smtp_mailbox() as box:
        yield box
