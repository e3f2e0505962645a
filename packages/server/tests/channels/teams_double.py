"""Local doubles of what the Teams channel talks to, over real HTTP (aiohttp on 127.0.0.1):

- the Bot Framework identity: an OpenID metadata document and its JWKS, holding the public half
  of an RSA key pair generated here; :meth:`TeamsDouble.sign` issues real RS256 tokens with it,
  the way the Bot Framework signs the activities it sends to a bot;
- the token endpoint (client credentials) the server gets its bot token from;
- the Bot Framework connector: records every posted (``POST .../activities``) and updated
  (``PUT .../activities/{id}``) card and answers with an activity id.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

APP_ID = "00000000-0000-0000-0000-0000000000a1"
APP_PASSWORD = "teams-app-password-for-tests"
ISSUER = "https://api.botframework.com"
BOT_TOKEN = "teams-bot-token-from-the-double"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class ConnectorCall:
    method: str
    path: str  # decoded: /v3/conversations/<conversation>/activities[/<id>]
    authorization: str
    body: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)

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
class TeamsDouble:
    calls: list[ConnectorCall] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key_fetches: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1_700_000_000_001)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.key = new_key()
        self.kid = f"kid-{uuid.uuid4().hex[:8]}"

    # -- addresses ------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openid_url(self) -> str:
        return f"{self.base}/v1/.well-known/openidconfiguration"

    @property
    def token_url(self) -> str:
        return f"{self.base}/botframework.com/oauth2/v2.0/token"

    @property
    def service_url(self) -> str:
        return f"{self.base}/teams/"

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

    def start(self) -> TeamsDouble:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="teams-double")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Teams double did not start")
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/botframework.com/oauth2/v2.0/token", self._token)
        app.router.add_route("*", "/teams/{tail:.*}", self._connector)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

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
        with self._lock:
            self.key_fetches += 1
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": ["msteams"]})
        return web.json_response({"keys": [jwk]})

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        with self._lock:
            self.token_requests.append(form)
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3600, "access_token": BOT_TOKEN}
        )

    async def _connector(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body = json.loads(raw) if raw else {}
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
        with self._lock:
            self.calls.append(
                ConnectorCall(
                    request.method, path, request.headers.get("Authorization", ""), body, answer
                )
            )
        return web.json_response(answer, status=status)

    # -- what was recorded ----------------------------------------------------------------------

    def find(
        self, method: str, where: Callable[[ConnectorCall], bool] = lambda c: True
    ) -> list[ConnectorCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and where(c)]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        where: Callable[[ConnectorCall], bool] = lambda c: True,
        timeout: float = 15.0,
    ) -> list[ConnectorCall]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(method, where)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {method} calls, got {found}")
            time.sleep(0.02)
