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
import json
import logging
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from functionlayer.models import (
    ContactChannel,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    TeamsContactChannel,
)

from functionlayer_server._channels._base import (
    ChannelRequest,
    DeliveryStore,
    find_delivery,
    first_time,
)
from functionlayer_server._channels._dispatch import delivery_tiers
from functionlayer_server._channels._teams_cards import (
    ACTION_APPROVE,
    ACTION_REJECT,
    ACTION_REJECT_OPTION,
    ACTION_REPLY,
    ACTION_RESPOND_OPTION,
    CardRef,
    arguments_fit,
    decided_card,
    kind_of,
    message_activity,
    outcome_text,
    parse_value,
    request_card,
)
from functionlayer_server._errors import (
    AlreadyDecidedError,
    ForbiddenError,
    InvalidDecisionError,
    ServerError,
)
from functionlayer_server._extras import require_extra
from functionlayer_server._policy import Identity
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
VIA = "teams"
LEEWAY_SECONDS = 300
"""Clock skew allowed on ``exp``/``nbf``/``iat`` (the Bot Framework's documented 5 minutes)."""
KEY_REFETCH_SECONDS = 60.0
"""An unknown ``kid`` refetches the keys at most this often."""
KEY_TTL_SECONDS = 24 * 3600.0
"""Keys are refetched at least this often."""
FETCH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_DOCUMENT_BYTES = 512 * 1024
"""The OpenID metadata and the JWKS may be at most this large."""

_SEEN_KEY = "teams:activity:"


class TeamsApiError(Exception):
    """The connector or the token endpoint answered with an error."""


class _Unauthorized(Exception):
    """The activity is not proven to come from the Bot Framework for this bot: 401."""


class _Refused(Exception):
    """An answer that must not decide anything (audited where it names a request)."""


def create_channel(
    service: ApprovalService, settings: Settings, deliveries: DeliveryStore
) -> TeamsChannel | None:
    """Teams is on when the bot's app id and password are set."""
    if not settings.teams_app_id or not settings.teams_app_password:
        return None
    require_extra("teams", "jwt.algorithms")  # or name the extra to install (PyJWT[crypto])
    require_extra("teams", "cryptography.hazmat.primitives.asymmetric.rsa")
    return TeamsChannel(service, settings, deliveries)


def _segment(value: str) -> str:
    """One path segment of a connector URL (ids come from requests: never let them add any)."""
    value = value.strip()
    if not value or value in (".", ".."):
        raise ValueError(f"not a Teams id: {value!r}")
    return quote(value, safe="")


def _conversation(value: str) -> str:
    """A conversation id without the ``;messageid=`` suffix Teams adds for a channel thread."""
    return value.split(";messageid=", 1)[0].strip()


def _target(request: ChannelRequest, key: str) -> TeamsContactChannel | None:
    for tier in delivery_tiers(request):
        for target in tier:
            if target.teams is not None and target.teams.conversation_id.strip() == key:
                return target.teams
    return None


def _progress(request: ChannelRequest) -> str | None:
    if not isinstance(request, FunctionCall) or request.spec.policy is None:
        return None
    required = request.spec.policy.approvals_required
    if required <= 1:
        return None
    have = len(request.status.approvals or []) if request.status else 0
    return f"{have} of {required} approvals so far."


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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


class TeamsChannel:
    name = VIA

    def __init__(
        self, service: ApprovalService, settings: Settings, deliveries: DeliveryStore
    ) -> None:
        self.service = service
        self.settings = settings
        self.deliveries = deliveries
        self.keys = BotFrameworkKeys(settings.teams_openid_url)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

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
        token = await self._bot_token()
        url = self.settings.teams_service_url.rstrip("/") + path
        async with httpx.AsyncClient(timeout=15, follow_redirects=False) as client:
            response = await client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        if response.status_code >= 400:
            raise TeamsApiError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}"
            )
        if not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}

    # -- the Channel protocol ---------------------------------------------------------------

    def handles(self, target: ContactChannel) -> bool:
        return target.teams is not None

    async def deliver(self, request: ChannelRequest, target: ContactChannel, *, tier: int) -> None:
        teams = target.teams
        assert teams is not None
        conversation = teams.conversation_id.strip()
        card = request_card(
            request,
            context=teams.context,
            base_url=self.settings.base_url,
            progress=_progress(request),
        )
        answer = await self._connector(
            "POST", f"/v3/conversations/{_segment(conversation)}/activities", message_activity(card)
        )
        activity_id = str(answer.get("id") or "")
        if not activity_id:
            raise TeamsApiError("POST /v3/conversations/{id}/activities returned no activity id")
        await self.deliveries.save_delivery(
            request.call_id,
            VIA,
            {"target": conversation, "conversation": conversation, "activity": activity_id},
            kind=kind_of(request),
        )

    async def update(self, request: ChannelRequest, deliveries: list[dict[str, Any]]) -> None:
        """Replace every delivered card by one showing who decided what, without actions."""
        await self._rewrite(request, deliveries, decided=True)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post(MESSAGES_PATH, include_in_schema=False)
        async def messages(request: Request) -> Response:
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

        return router

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
        conversation = _conversation(str(_dict(activity.get("conversation")).get("id") or ""))
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
            request = await self._load(ref)
        except _Refused:
            return
        user = _user_of(activity) if verified else ""
        await self.service.record_audit(
            kind_of(request),
            request.call_id,
            who=f"teams:{user}" if user else "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason, "activity": str(activity.get("id") or "")[:200]},
        )

    # -- answers -----------------------------------------------------------------------------

    async def handle_activity(self, activity: dict[str, Any]) -> dict[str, Any]:
        """Act on a verified, first-seen activity; the return value is the response body."""
        ref = parse_value(activity.get("value"))
        if activity.get("type") != "message" or ref is None:
            return {"ok": True, "detail": "nothing to do"}
        user = _user_of(activity)
        conversation = _conversation(str(_dict(activity.get("conversation")).get("id") or ""))
        reply_to = str(activity.get("replyToId") or "")
        try:
            request = await self._load(ref)
            return await self._act(request, ref, user, conversation, reply_to)
        except _Refused as refused:
            return {"ok": False, "detail": str(refused)}
        except Exception:
            log.exception("Teams activity failed")
            return {"ok": False, "detail": "Something went wrong on the server; nothing changed."}

    async def _act(
        self,
        request: ChannelRequest,
        ref: CardRef,
        user: str,
        conversation: str,
        reply_to: str,
    ) -> dict[str, Any]:
        if request.completed:
            await self._audit_refusal(request, user, "already decided")
            raise _Refused("Already decided: " + outcome_text(request))
        target = await self._authorize(request, user, conversation, reply_to)
        text = (ref.text or "").strip()
        if isinstance(request, FunctionCall):
            if ref.action == ACTION_APPROVE:
                if not arguments_fit(request):
                    raise _Refused(
                        "This card cannot show every argument, so it cannot approve the call: "
                        "open it in the inbox to decide."
                    )
                return await self._decide(request, FunctionCallStatus(approved=True), user, target)
            if ref.action == ACTION_REJECT:
                if not text:
                    raise _Refused("Please write something: it is what the agent gets back.")
                decision = FunctionCallStatus(approved=False, comment=text)
                return await self._decide(request, decision, user, target)
            if ref.action == ACTION_REJECT_OPTION and ref.option is not None:
                options = request.spec.reject_options or []
                if ref.option >= len(options):
                    raise _Refused("This option is not part of the request.")
                decision = FunctionCallStatus(
                    approved=False, reject_option_name=options[ref.option].name
                )
                return await self._decide(request, decision, user, target)
        else:
            if ref.action == ACTION_REPLY:
                if not text:
                    raise _Refused("Please write something: it is what the agent gets back.")
                return await self._answer(request, text, None, user, target)
            if ref.action == ACTION_RESPOND_OPTION and ref.option is not None:
                response_options = request.spec.response_options or []
                if ref.option >= len(response_options):
                    raise _Refused("This option is not part of the request.")
                name = response_options[ref.option].name
                return await self._answer(request, None, name, user, target)
        await self._audit_refusal(request, user, "the action does not match the request")
        raise _Refused("This action does not match the request.")

    def _via_identities(self, target: TeamsContactChannel) -> list[Identity] | None:
        allowed = target.allowed_responder_ids
        return None if allowed is None else [Identity("teams", rid) for rid in allowed]

    async def _decide(
        self,
        call: FunctionCall,
        decision: FunctionCallStatus,
        user: str,
        target: TeamsContactChannel,
    ) -> dict[str, Any]:
        try:
            result = await self.service.respond_function_call(
                call.call_id,
                decision,
                responder=Identity("teams", user),
                via=VIA,
                via_identities=self._via_identities(target),
            )
        except AlreadyDecidedError as exc:
            await self._audit_refusal(call, user, "already decided")
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:  # audited by the service
            raise _Refused("You are not allowed to answer this request.") from exc
        except InvalidDecisionError as exc:
            raise _Refused(exc.message) from exc
        if not result.completed:  # quorum: recorded, more approvals needed
            try:
                await self._rewrite(result, await self._deliveries(result), decided=False)
            except (RuntimeError, TeamsApiError, httpx.HTTPError) as exc:
                log.warning("Teams: showing quorum progress failed: %s", exc)
            return {"ok": True, "detail": f"Your approval is recorded. {_progress(result) or ''}"}
        return {"ok": True, "detail": outcome_text(result)}

    async def _answer(
        self,
        contact: HumanContact,
        response: str | None,
        option: str | None,
        user: str,
        target: TeamsContactChannel,
    ) -> dict[str, Any]:
        try:
            result = await self.service.respond_human_contact(
                contact.call_id,
                response=response,
                response_option_name=option,
                responder=Identity("teams", user),
                via=VIA,
                via_identities=self._via_identities(target),
            )
        except AlreadyDecidedError as exc:
            await self._audit_refusal(contact, user, "already decided")
            raise _Refused(f"Already decided: {exc.message}") from exc
        except ForbiddenError as exc:
            raise _Refused("You are not allowed to answer this request.") from exc
        except InvalidDecisionError as exc:
            raise _Refused(exc.message) from exc
        return {"ok": True, "detail": outcome_text(result)}

    # -- helpers -----------------------------------------------------------------------------

    async def _load(self, ref: CardRef) -> ChannelRequest:
        try:
            if ref.kind == "function_call":
                return await self.service.get_function_call(ref.call_id)
            return await self.service.get_human_contact(ref.call_id)
        except ServerError as exc:  # not found, or ambiguous between projects
            raise _Refused("This request is not available on the FunctionLayer server.") from exc

    async def _deliveries(self, request: ChannelRequest) -> list[dict[str, Any]]:
        return await self.deliveries.load_deliveries(
            request.call_id, channel=VIA, kind=kind_of(request)
        )

    async def _audit_refusal(
        self, request: ChannelRequest, user: str, reason: str, **details: Any
    ) -> None:
        await self.service.record_audit(
            kind_of(request),
            request.call_id,
            who=f"teams:{user}" if user else "unknown",
            via=VIA,
            action="refused",
            details={"reason": reason, **details},
        )

    async def _authorize(
        self, request: ChannelRequest, user: str, conversation: str, reply_to: str
    ) -> TeamsContactChannel:
        """The target the clicked card was delivered to, if ``user`` may answer there; else
        the refusal is audited and raised."""
        delivery = await find_delivery(
            lambda: self._deliveries(request),
            lambda d: d.get("conversation") == conversation and d.get("activity") == reply_to,
            wait=bool(reply_to),
        )
        target = None if delivery is None else _target(request, str(delivery.get("target")))
        reason: str | None = None
        if not user:
            reason = "no Teams user (from.aadObjectId) in the activity"
        elif target is None:
            reason = "the card is not a delivery of this request"
        if reason is None and target is not None:
            try:
                # Who may decide is the policy's call (the directory, the operator's rules,
                # the request's responders, and this target's allowed_responder_ids).
                await self.service.authorize(
                    kind_of(request),
                    request.call_id,
                    Identity("teams", user),
                    via=VIA,
                    via_identities=self._via_identities(target),
                )
            except ForbiddenError as exc:  # audited by the service
                raise _Refused("You are not allowed to answer this request.") from exc
            return target
        assert reason is not None
        await self._audit_refusal(
            request,
            user,
            reason,
            conversation=conversation[:200],
            activity=reply_to[:200],
        )
        raise _Refused("You are not allowed to answer this request.")

    async def _rewrite(
        self, request: ChannelRequest, deliveries: list[dict[str, Any]], *, decided: bool
    ) -> None:
        errors: list[str] = []
        for delivery in deliveries:
            target = _target(request, str(delivery.get("target")))
            context = target.context if target else None
            card = (
                decided_card(request, context=context)
                if decided
                else request_card(
                    request,
                    context=context,
                    base_url=self.settings.base_url,
                    progress=_progress(request),
                )
            )
            try:
                path = (
                    f"/v3/conversations/{_segment(str(delivery.get('conversation')))}"
                    f"/activities/{_segment(str(delivery.get('activity')))}"
                )
                await self._connector("PUT", path, message_activity(card))
            except (TeamsApiError, httpx.HTTPError, ValueError) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))


def _user_of(activity: dict[str, Any]) -> str:
    """The clicker's Entra object id (``from.aadObjectId``), lower case; ``""`` without one."""
    value = _dict(activity.get("from")).get("aadObjectId")
    return value.strip().lower()[:200] if isinstance(value, str) else ""
