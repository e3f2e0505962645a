"""The server in process (``TestClient``) with Slack pointed at the local double: its settings,
the app, and what the channel tests do with it (run a service coroutine, find a posted message,
send a signed interaction)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from functionlayer_server._app import create_app
from functionlayer_server._settings import Settings

from packages.server.tests._test_client import InProcessApp
from packages.server.tests.channels.conftest import BOT_TOKEN, SIGNING_SECRET
from packages.server.tests.channels.slack_double import (
    SlackCall,
    SlackDouble,
    interaction_body,
    slack_headers,
)


def slack_settings(
    directory: Path,
    double: SlackDouble,
    *,
    policy: str = '[default]\nslack_channels = ["C-OPS"]\n',
    database_url: str | None = None,
    **extra: Any,
) -> Settings:
    """Settings of a server with Slack pointed at the double, its policy file and (unless
    ``database_url`` says otherwise) its SQLite database in ``directory``."""
    policy_file = directory / "policy.toml"
    policy_file.write_text(policy)
    extra.setdefault("scheduler_interval_seconds", 0.05)
    extra.setdefault("public_url", "http://testserver")
    return Settings(
        policy_file=str(policy_file),
        database_url=database_url or f"sqlite:///{directory / 'server.sqlite3'}",
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=double.api_url,
        **extra,
    )


@contextmanager
def in_process(settings: Settings) -> Iterator[tuple[TestClient, Any]]:
    """The app in process and its service; server errors become 500 answers, as a real
    server gives them."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, client.app.state.service  # type: ignore[attr-defined]


@dataclass
class SlackApp(InProcessApp):
    """... with an agent's headers and the Slack double it posts to."""

    headers: dict[str, str]
    slack: SlackDouble

    def posted(self, call_id: str) -> SlackCall:
        """The (last) message posted for ``call_id``."""
        return self.slack.wait_for(
            "chat.postMessage", where=lambda c: f"`{call_id}`" in c.blocks_json()
        )[-1]

    def send(self, payload: dict[str, Any], **headers: str) -> Any:
        """Post an interaction payload, signed the way Slack signs it unless ``headers``."""
        body = interaction_body(payload)
        return self.client.post(
            "/slack/interactions",
            content=body,
            headers=headers or slack_headers(body, SIGNING_SECRET),
        )
