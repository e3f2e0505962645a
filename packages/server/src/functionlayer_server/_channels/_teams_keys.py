"""The Bot Framework's signing keys for Teams: fetched from ``teams_openid_url`` (bounded
timeouts and sizes, no redirects), cached, an unknown ``kid`` refetching at most once a minute."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from functionlayer_server._channels._teams_answers import TeamsApiError

__all__ = ["FETCH_TIMEOUT", "KEY_REFETCH_SECONDS", "BotFrameworkKeys"]

log = logging.getLogger("functionlayer_server.channels.teams")

KEY_REFETCH_SECONDS = 60.0
"""An unknown ``kid`` refetches the keys at most this often."""
KEY_TTL_SECONDS = 24 * 3600.0
"""Keys are refetched at least this often."""
FETCH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_DOCUMENT_BYTES = 512 * 1024
"""The OpenID metadata and the JWKS may be at most this large."""


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """A JSON object from ``url``, at most MAX_DOCUMENT_BYTES, no redirects."""
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise TeamsApiError(f"GET {url}: HTTP {response.status_code}")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise TeamsApiError(f"GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise TeamsApiError(f"GET {url}: not a JSON object")
    return data


class BotFrameworkKeys:
    """The signing keys of the Bot Framework: the JWKS named by the OpenID metadata at
    ``openid_url`` (the operator's setting). Cached for ``KEY_TTL_SECONDS``; a token naming an
    unknown ``kid`` refetches at most every ``refetch_seconds`` (so forged tokens cannot make
    the server hammer the identity provider)."""

    def __init__(self, openid_url: str, *, refetch_seconds: float = KEY_REFETCH_SECONDS) -> None:
        self.openid_url = openid_url
        self.refetch_seconds = refetch_seconds
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetches += 1
        scheme = urlsplit(self.openid_url).scheme
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            metadata = await _get_json(client, self.openid_url)
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in {"https", scheme}:
                raise TeamsApiError("the OpenID metadata names no usable jwks_uri")
            jwks = await _get_json(client, jwks_uri)
        keys: dict[str, dict[str, Any]] = {}
        for key in jwks.get("keys") or []:
            if (
                isinstance(key, dict)
                and key.get("kty") == "RSA"
                and isinstance(key.get("kid"), str)
            ):
                keys[key["kid"]] = key
        if not keys:
            raise TeamsApiError("the JWKS holds no RSA keys")
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def get(self, kid: str) -> dict[str, Any] | None:
        """The JWK with this ``kid``, or None."""
        async with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > KEY_TTL_SECONDS
            may_refetch = (
                self._attempted_at is None or now - self._attempted_at >= self.refetch_seconds
            )
            if (stale or kid not in self._keys) and may_refetch:
                try:
                    await self._fetch()
                except (httpx.HTTPError, TeamsApiError, ValueError) as exc:
                    log.warning("Teams: fetching the Bot Framework keys failed: %s", exc)
            return self._keys.get(kid)
