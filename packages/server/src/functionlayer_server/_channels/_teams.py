"""Microsoft Teams: post requests as Adaptive Cards through the Bot Framework, take the answers
from the bot's messaging endpoint.

Delivery: ``POST {teams_service_url}/v3/conversations/{conversation_id}/activities`` with a bot
token obtained by client credentials from ``teams_token_url`` (cached until shortly before it
expires). The connector URL is the operator's setting only: neither the agent (its request
names a conversation, never a URL) nor an incoming activity (its ``serviceUrl`` is only
compared) decides where the bot token goes. After the decision every delivered card is replaced
(``PUT .../activities/{activityId}``) by one showing who decided what, without actions.

Answers: the card's ``Action.Submit`` buttons make Teams send a ``message`` activity to
``POST /channels/teams/messages`` (the bot's messaging endpoint) with ``Authorization: Bearer
<JWT>``. The token must be RS256-signed by a key of the JWKS named by the OpenID metadata at
``teams_openid_url`` (keys cached; an unknown ``kid`` refetches at most once a minute; bounded
timeouts and sizes; nothing the request names, such as ``jku``, is ever fetched), issued by
``teams_issuer``, for the audience ``teams_app_id``, within its validity (5 minutes of clock
skew, the Bot Framework's figure), with a ``serviceurl`` claim equal to the activity's
``serviceUrl`` (and, when the key lists endorsements, the activity's ``channelId`` among them).
Anything else gets ``401`` and decides nothing; a refusal that names a request is audited.

Who may decide is the policy's call (:meth:`ApprovalService.authorize`): the clicker's Entra
object id (``from.aadObjectId``) must belong to a person of the directory whom the request's
policy lets decide, and the card they clicked must be a delivery of that request. A replayed
activity (same id) and a second answer to a decided request are refused and audited. Decisions
go through the service, so nothing is decided twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from functionlayer.models import (
    ContactChannel,
)

from functionlayer_server._channels._answering import audit_refused
from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
    first_time,
    quorum_progress,
)
from functionlayer_server._channels._core import MessageChannel, rewrite_each
from functionlayer_server._channels._rest import call_json, path_segment, required_id
from functionlayer_server._channels._teams_answers import (
    VIA,
    TeamsAnswers,
    TeamsApiError,
    as_dict,
    conversation_of,
    teams_target,
    user_of,
)
from functionlayer_server._channels._teams_cards import (
    decided_card,
    kind_of,
    message_activity,
    parse_value,
    request_card,
)
from functionlayer_server._channels._teams_keys import (
    FETCH_TIMEOUT,
    KEY_REFETCH_SECONDS,
    BotFrameworkKeys,
)
from functionlayer_server._extras import require_extra
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings

__all__ = [
    "KEY_REFETCH_SECONDS",
    "LEEWAY_SECONDS",
    "MESSAGES_PATH",
    "BotFrameworkKeys",
    "TeamsChannel",
    "create_channel",
]

log = logging.getLogger("functionlayer_server.channels.teams")

MESSAGES_PATH = "/channels/teams/messages"
LEEWAY_SECONDS = 300
"""Clock skew allowed on ``exp``/``nbf``/``iat`` (the Bot Framework's documented 5 minutes)."""
_SEEN_KEY = "teams:activity:"


class _Unauthorized(Exception):
    """The activity is not proven to come from the Bot Framework for this bot: 401."""


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> TeamsChannel | None:
    """Teams is on when the bot's app id and password are set."""
    if not settings.teams_app_id or not settings.teams_app_password:
        return None
    require_extra("teams", "jwt.algorithms")  # or name the extra to install (PyJWT[crypto])
    require_extra("teams", "cryptography.hazmat.primitives.asymmetric.rsa")
    return TeamsChannel(service, settings, deliveries)


_segment = partial(path_segment, platform="Teams")


class TeamsChannel(MessageChannel):
    name = VIA
    inbound_path = MESSAGES_PATH

    def prepare(self) -> None:
        # The bot token (client credentials), cached until shortly before it expires.
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.keys = BotFrameworkKeys(self.settings.teams_openid_url)
        self.answers = TeamsAnswers(self)

    # -- the connector -----------------------------------------------------------------------

    async def _bot_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and time.time() < self._token_expires - 60:
                return self._token
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
                response = await client.post(
                    self.settings.teams_token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.settings.teams_app_id or "",
                        "client_secret": self.settings.teams_app_password or "",
                        "scope": self.settings.teams_token_scope,
                    },
                )
            if response.status_code != 200:
                raise TeamsApiError(f"bot token: HTTP {response.status_code}")
            data = response.json()
            token = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise TeamsApiError("bot token: no access_token in the answer")
            expires_in = data.get("expires_in", 3600)
            try:
                lifetime = float(expires_in)
            except (TypeError, ValueError):
                lifetime = 3600.0
            self._token, self._token_expires = token, time.time() + lifetime
            return token

    async def _connector(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await self._bot_token()}"}
        url = self.settings.teams_service_url.rstrip("/")
        return await call_json(method, url, path, body, headers, TeamsApiError)

    # -- the Channel protocol ---------------------------------------------------------------

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        teams = target.teams
        assert teams is not None
        conversation = teams.conversation_id.strip()
        card = request_card(
            request,
            context=teams.context,
            base_url=self.settings.base_url,
            progress=quorum_progress(request),
        )
        answer = await self._connector(
            "POST", f"/v3/conversations/{_segment(conversation)}/activities", message_activity(card)
        )
        posted = "POST /v3/conversations/{id}/activities"
        activity_id = required_id(answer, TeamsApiError, posted, "activity")
        await self.deliveries.save_delivery(
            request.call_id,
            VIA,
            {"target": conversation, "conversation": conversation, "activity": activity_id},
            kind=kind_of(request),
        )

    async def receive(self, request: Request) -> Response:
        try:
            activity = await request.json()
        except ValueError:
            activity = None
        if not isinstance(activity, dict):
            return JSONResponse(
                {"detail": "malformed Bot Framework activity", "code": "bad_request"},
                status_code=400,
            )
        try:
            await self.verify(request.headers.get("authorization", ""), activity)
        except _Unauthorized as exc:
            await self._audit_unverified(activity, str(exc))
            return JSONResponse({"detail": str(exc), "code": "unauthorized"}, status_code=401)
        activity_id = str(activity.get("id") or "")
        if not activity_id:
            return JSONResponse(
                {"detail": "Bot Framework activity without an id", "code": "bad_request"},
                status_code=400,
            )
        if not await self._first_time(activity):
            await self._audit_unverified(activity, "replayed Teams activity", verified=True)
            return JSONResponse(
                {"detail": "replayed Teams activity", "code": "unauthorized"}, status_code=401
            )
        return JSONResponse(await self.handle_activity(activity))

    # -- authentication ----------------------------------------------------------------------

    async def verify(self, authorization: str, activity: dict[str, Any]) -> dict[str, Any]:
        """The claims of the activity's token, if it proves the activity comes from the Bot
        Framework for this bot; else ``_Unauthorized``."""
        import jwt

        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _Unauthorized("no Bot Framework token (Authorization: Bearer …)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _Unauthorized(f"malformed Bot Framework token: {exc}") from None
        if header.get("alg") != "RS256":
            raise _Unauthorized("Bot Framework tokens must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise _Unauthorized("the Bot Framework token names no signing key")
        jwk = await self.keys.get(kid)
        if jwk is None:
            raise _Unauthorized("the Bot Framework token is signed by an unknown key")
        endorsements = jwk.get("endorsements")
        if isinstance(endorsements, list) and activity.get("channelId") not in endorsements:
            raise _Unauthorized("the signing key is not endorsed for the activity's channel")
        try:
            key = jwt.PyJWK(jwk, algorithm="RS256").key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.settings.teams_app_id,
                issuer=self.settings.teams_issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise _Unauthorized(f"invalid Bot Framework token: {exc}") from None
        service_url = activity.get("serviceUrl")
        if not isinstance(service_url, str) or claims.get("serviceurl") != service_url:
            raise _Unauthorized("the activity's serviceUrl is not the one its token was issued for")
        return claims

    async def _first_time(self, activity: dict[str, Any]) -> bool:
        """Claim the activity id; False when it was seen before (first write wins)."""
        conversation = conversation_of(str(as_dict(activity.get("conversation")).get("id") or ""))
        key = f"{_SEEN_KEY}{conversation[:200]}:{str(activity.get('id'))[:200]}"
        return await first_time(self.service.store, key)

    async def _audit_unverified(
        self, activity: dict[str, Any], reason: str, *, verified: bool = False
    ) -> None:
        """Audit a refused activity on the request it names (if any). The user it claims is
        recorded only when its token was verified."""
        ref = parse_value(activity.get("value"))
        if ref is None:
            log.warning("Teams activity refused: %s", reason)
            return
        try:
            request = await self.answers.find(ref)
            if request is None:
                return
        except LookupError:
            return
        user = user_of(activity) if verified else ""
        activity_id = str(activity.get("id") or "")[:200]
        await audit_refused(self.service, request, VIA, user, reason, activity=activity_id)

    # -- answers (in _teams_answers) ---------------------------------------------------------

    async def handle_activity(self, activity: dict[str, Any]) -> dict[str, Any]:
        """Act on a verified, first-seen activity; the return value is the response body."""
        return await self.answers.handle_activity(activity)

    async def rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None:
        async def build(delivery: dict[str, Any]) -> dict[str, Any]:
            target = teams_target(request, str(delivery.get("target")))
            context = target.context if target else None
            if decided:
                return decided_card(request, context=context)
            progress = quorum_progress(request)
            return request_card(
                request, context=context, base_url=self.settings.base_url, progress=progress
            )

        async def send(delivery: dict[str, Any], card: dict[str, Any]) -> None:
            path = (
                f"/v3/conversations/{_segment(str(delivery.get('conversation')))}"
                f"/activities/{_segment(str(delivery.get('activity')))}"
            )
            await self._connector("PUT", path, message_activity(card))

        await rewrite_each(deliveries, build, send, (TeamsApiError, httpx.HTTPError, ValueError))
