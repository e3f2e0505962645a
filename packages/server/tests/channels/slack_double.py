"""A local double of the Slack Web API (and Socket Mode) for tests: a real aiohttp server on
127.0.0.1 that records every call the real ``slack_sdk`` makes through ``base_url``, answers the
way Slack does, and can push Socket Mode envelopes to connected clients."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

from packages.server.tests.channels._double_base import Address, LocalDouble


@dataclass
class SlackCall:
    method: str
    token: str | None
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)

    def blocks_json(self) -> str:
        blocks = self.params.get("blocks")
        return blocks if isinstance(blocks, str) else json.dumps(blocks)

    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    def view(self) -> dict[str, Any]:
        view = self.params.get("view")
        return json.loads(view) if isinstance(view, str) else dict(view or {})


@dataclass
class SlackDouble(LocalDouble[SlackCall]):
    fail: dict[str, list[str]] = field(default_factory=dict)
    """method -> Slack error codes to answer with (``ok: false``), one per call, before succeeding."""
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)

    name = "slack"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ts = 0
        self._sockets: list[web.WebSocketResponse] = []

    # -- lifecycle ---------------------------------------------------------------------------

    api_url = Address("/api/")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)

    async def before_cleanup(self) -> None:
        for ws in list(self._sockets):
            await ws.close()

    # -- Web API -----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        params: dict[str, Any] = dict(request.query)
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(parse_qsl(raw.decode()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or params.get("token")
        with self._cond:
            failures = self.fail.get(method)
            error = failures.pop(0) if failures else None
            self._ts += 1
            ts = f"{1_700_000_000 + self._ts}.{self._ts:06d}"
        body: dict[str, Any] = {"ok": True}
        if error is not None:
            body = {"ok": False, "error": error}
        elif not token:
            body = {"ok": False, "error": "not_authed"}
        elif method == "chat.postMessage":
            channel = str(params.get("channel"))
            # Posting to a user id opens a DM, as in Slack.
            if channel.startswith("U"):
                channel = "D" + channel[1:]
            body.update(channel=channel, ts=ts, message={"ts": ts, "text": params.get("text")})
        elif method == "chat.update":
            body.update(channel=params.get("channel"), ts=params.get("ts"))
        elif method == "chat.postEphemeral":
            body.update(message_ts=ts)
        elif method == "views.open":
            body.update(view={"id": "V" + uuid.uuid4().hex[:8].upper()})
        elif method == "auth.test":
            body.update(user_id="UBOT", team_id="T1", bot_id="B1")
        elif method == "apps.connections.open":
            body.update(url=f"ws://127.0.0.1:{self.port}/socket")
        self.record(SlackCall(method, token, params, body))
        return web.json_response(body)

    # -- Socket Mode -------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        with self._cond:
            self._cond.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    with self._cond:
                        if "envelope_id" in data:
                            self.acks[data["envelope_id"]] = data
                        self._cond.notify_all()
        finally:
            self._sockets.remove(ws)
        return ws

    def wait_for_socket(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._sockets), timeout):
                raise AssertionError("no Socket Mode client connected to the double")

    def push_interactive(self, payload: dict[str, Any]) -> str:
        """Send an ``interactive`` envelope to the connected Socket Mode client."""
        envelope_id = uuid.uuid4().hex
        message = {
            "envelope_id": envelope_id,
            "type": "interactive",
            "payload": payload,
            "accepts_response_payload": payload.get("type") == "view_submission",
        }
        asyncio.run_coroutine_threadsafe(self._sockets[-1].send_json(message), self.loop).result(5)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"no Socket Mode ack for {envelope_id}")
            return self.acks[envelope_id]

    # -- inspection --------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return self.find(method)


# -- signing interaction requests the way Slack does ------------------------------------------


def interaction_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_headers(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """``X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")`` and the timestamp."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def action_value(message: SlackCall, action_prefix: str) -> tuple[str, str]:
    """(action_id, value) of the first button in a posted message whose action_id starts so."""
    for block in message.blocks():
        for element in block.get("elements", []):
            if str(element.get("action_id", "")).startswith(action_prefix):
                return element["action_id"], element.get("value", "")
    raise AssertionError(f"no {action_prefix} button in {message.blocks_json()}")


def block_actions(message: SlackCall, user: str, action_prefix: str) -> dict[str, Any]:
    """A ``block_actions`` payload for clicking a button on a message the server posted."""
    action_id, value = action_value(message, action_prefix)
    posted = message.response
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "trigger_id": "trigger-" + uuid.uuid4().hex[:8],
        "container": {
            "type": "message",
            "channel_id": posted["channel"],
            "message_ts": posted["ts"],
        },
        "channel": {"id": posted["channel"]},
        "message": {"ts": posted["ts"]},
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }


def view_submission(view: dict[str, Any], user: str, text: str) -> dict[str, Any]:
    """Submitting a modal the server opened (views.open) with ``text`` in its input."""
    input_block = next(b for b in view["blocks"] if b.get("type") == "input")
    return {
        "type": "view_submission",
        "user": {"id": user},
        "view": {
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {
                    input_block["block_id"]: {
                        input_block["element"]["action_id"]: {
                            "type": "plain_text_input",
                            "value": text,
                        }
                    }
                }
            },
        },
    }
