"""Shared fixtures for channel tests: the local doubles of Slack's, Discord's and Teams' APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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


@pytest.fixture
def slack_double() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        yield double


@pytest.fixture(scope="module")
def module_slack_double() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        yield double


@pytest.fixture
def discord_double() -> Iterator[DiscordDouble]:
    with DiscordDouble() as double:
        yield double


@pytest.fixture
def teams_double() -> Iterator[TeamsDouble]:
    with TeamsDouble() as double:
        yield double


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server for the module, and its port."""
    with smtp_mailbox() as box:
        yield box
