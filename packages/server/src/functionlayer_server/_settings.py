"""Server configuration: CLI options override ``FUNCTIONLAYER_SERVER_*`` environment variables,
which override the defaults below."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from functionlayer_server._policy import OperatorPolicy

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "FUNCTIONLAYER_SERVER_"

_LIST_FIELDS = {"webhook_urls"}

# Other environment names accepted for a field when ``FUNCTIONLAYER_SERVER_<FIELD>`` is unset.
_ALIASES = {
    "discord_bot_token": "DISCORD_BOT_TOKEN",
    "discord_public_key": "DISCORD_PUBLIC_KEY",
    "discord_api_base": "DISCORD_API_BASE",
}


class Settings(BaseModel):
    """Everything the server needs to know. Mutable on purpose: ``create_app`` fills in
    ``secret_key`` from the database when it is not given."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    database_url: str = "sqlite:///./functionlayer.sqlite3"
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``postgresql://...``."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str | None = None
    """Signs sessions, CSRF tokens and links. Generated once and kept in the database if unset."""
    public_url: str | None = None
    """How humans reach this server (links in emails and Slack); defaults to http://host:port."""
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: str | None = None
    """HMAC key for webhook signatures; webhooks are sent unsigned only if this is unset."""
    webhook_max_attempts: int = Field(default=8, ge=1)
    """Attempts per delivery (an attempt cut short by a crash counts) before it is marked
    failed; the row is kept and the failure is recorded in the request's audit trail."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long one delivery attempt may take (connect to last byte of the answer)."""
    webhook_retry_base_seconds: float = Field(default=0.5, gt=0)
    """Delay before the first retry; doubled per attempt up to ``webhook_retry_max_seconds``."""
    webhook_retry_max_seconds: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Request bodies larger than this get ``413`` (default 1 MiB)."""
    long_poll_max_seconds: float = Field(default=60.0, gt=0)
    """``?wait=`` values above this are capped."""
    max_pending_per_token: int = Field(default=200, ge=0)
    """Pending requests one agent token may have at once (per project); creating one more
    answers ``429`` until some are decided or given up. ``0``: no limit."""
    max_long_polls_per_token: int = Field(default=100, ge=0)
    """Long-polls (``?wait=``) one token may hold open at once in one server process; one more
    answers ``429`` at once. ``0``: no limit."""
    scheduler_interval_seconds: float = Field(default=1.0, gt=0)
    """Upper bound on how long the scheduler sleeps between checks for due work."""
    log_level: str = "info"
    policy_file: str | None = None
    """The operator's routing and policy rules (TOML, see docs/security.md). Unset: requests
    may be routed only to directory members, and every member of a project may decide."""
    # Contact channels (see _channels/). Slack is on when a bot token (or Socket Mode) is set.
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    """Verifies Slack interaction requests; they are all refused while it is unset."""
    slack_api_url: str = "https://slack.com/api/"
    slack_socket_mode_app_token: str | None = None
    """An ``xapp-`` token: receive interactions over Socket Mode instead of the HTTP endpoint."""
    # Discord is on when a bot token is set (env also DISCORD_BOT_TOKEN, ...; see _ALIASES).
    discord_bot_token: str | None = None
    discord_public_key: str | None = None
    """The application's Ed25519 public key (hex): verifies Discord interaction requests; they
    are all refused while it is unset."""
    discord_api_base: str = "https://discord.com/api/v10"
    # Microsoft Teams is on when the bot's app id and password are set (see _channels/_teams.py).
    teams_app_id: str | None = None
    """The bot's Microsoft app id: the audience every incoming token must name."""
    teams_app_password: str | None = None
    """The bot's client secret: gets the bot token (client credentials) for the connector."""
    teams_token_url: str = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    """Where the bot token comes from (a single-tenant bot: the tenant's token endpoint)."""
    teams_token_scope: str = "https://api.botframework.com/.default"
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    """The Bot Framework connector cards are posted to and updated at; set by the operator
    only (never taken from a request or an activity: the bot token goes there)."""
    teams_openid_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    """The OpenID metadata naming the keys (JWKS) that sign incoming Bot Framework tokens."""
    teams_issuer: str = "https://api.botframework.com"
    # Email is on when smtp_host is set.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    email_from: str | None = None
    email_link_ttl_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    email_inbound_secret: str | None = None

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(",", " ").split() if part.strip()]
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``FUNCTIONLAYER_SERVER_<FIELD>`` variables (a few also under another
        name, e.g. ``DISCORD_BOT_TOKEN``), then ``overrides``
        (``None`` overrides are ignored, so CLI options that were not given do not count)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if (raw is None or raw == "") and name in _ALIASES:
                raw = env.get(_ALIASES[name])
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def operator_policy(self) -> OperatorPolicy:
        """The rules in ``policy_file`` (read now; a broken file is a startup error)."""
        from functionlayer_server._policy import OperatorPolicy

        if not self.policy_file:
            return OperatorPolicy()
        import tomllib

        try:
            with open(self.policy_file, "rb") as fh:
                data = tomllib.load(fh)
            return OperatorPolicy.from_mapping(data)
        except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
            raise ValueError(f"cannot use the policy file {self.policy_file}: {exc}") from exc

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
