"""Local doubles of what the Teams channel talks to, over real HTTP (aiohttp on 127.0.0.1):

- the Bot Framework identity: an OpenID metadata document and its JWKS, holding the public half
  of an RSA key pair generated here; :meth:`TeamsDouble.sign` issues real RS256 tokens with it,
  the way the Bot Framework signs the activities it sends to a bot;
- the token endpoint (client credentials) the server gets its bot token from;
- the Bot Framework connector: records every posted (``POST .../activities``) and updated
  (``PUT .../activities/{id}``) card and answers with an activity id.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from packages.server.tests.channels._double_base import (
    Address,
    HttpCall,
    LocalDouble,
    json_body,
)

APP_ID = "00000000-0000-0000-0000-0000000000a1"
APP_PASSWORD = "teams-app-password-for-tests"
ISSUER = "https://api.botframework.com"
BOT_TOKEN = "teams-bot-token-from-the-double"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class ConnectorCall(HttpCall):
    """A call to the connector; its path decoded: /v3/conversations/<conversation>/activities[/<id>]."""

    @property
    def conversation(self) -> str:
        return self.path.split("/")[3]

    @property
    def card(self) -> dict[str, Any]:
        attachment = self.body["attachments"][0]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card: dict[str, Any] = attachment["content"]
        return card


@dataclass
class TeamsDouble(LocalDouble[ConnectorCall]):
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key_fetches: int = 0

    name = "teams"
    timeout = 15.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = itertools.count(1_700_000_000_001)
        self.key = new_key()
        self.kid = f"kid-{uuid.uuid4().hex[:8]}"

    # -- addresses ------------------------------------------------------------------------------

    base = Address("")
    openid_url = Address("/v1/.well-known/openidconfiguration")
    token_url = Address("/botframework.com/oauth2/v2.0/token")
    service_url = Address("/teams/")

    # -- tokens ---------------------------------------------------------------------------------

    def sign(
        self,
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """A Bot Framework token: RS256 over the claims (defaults: this bot's audience, the
        Bot Framework issuer, valid for ten minutes, this connector's ``serviceurl``)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": APP_ID,
            "serviceurl": self.service_url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + 600,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(
            body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    # -- the server -----------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/botframework.com/oauth2/v2.0/token", self._token)
        app.router.add_route("*", "/teams/{tail:.*}", self._connector)

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.example/authorize",
                "jwks_uri": f"{self.base}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        with self._cond:
            self.key_fetches += 1
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": ["msteams"]})
        return web.json_response({"keys": [jwk]})

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        with self._cond:
            self.token_requests.append(form)
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3600, "access_token": BOT_TOKEN}
        )

    async def _connector(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = await json_body(request)
        parts = path.strip("/").split("/")
        status = 200
        answer: dict[str, Any]
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            status, answer = 401, {"error": {"code": "Unauthorized"}}
        elif request.method == "POST" and len(parts) == 4 and parts[3] == "activities":
            answer = {"id": str(next(self._ids))}
        elif request.method == "PUT" and len(parts) == 5 and parts[3] == "activities":
            answer = {"id": parts[4]}
        else:
            status, answer = 404, {"error": {"code": "NotFound"}}
        self.record(
            ConnectorCall(
                request.method, path, request.headers.get("Authorization", ""), body, answer
            )
        )
        return web.json_response(answer, status=status)


def card_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a card (or any JSON value), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from card_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from card_nodes(value)
