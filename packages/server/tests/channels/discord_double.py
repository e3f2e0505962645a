"""A local double of Discord's REST API for tests: a real aiohttp server on 127.0.0.1 that
records every call (method, path, Authorization header, JSON body) and answers the way Discord
does for the three routes the server uses (open a DM, create a message, edit a message)."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from packages.server.tests.channels._double_base import Address, HttpCall, LocalDouble, json_body

DiscordCall = HttpCall


class DiscordDouble(LocalDouble[HttpCall]):
    name = "discord"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = itertools.count(900_000_000_000_000_001)

    api_base = Address("/api/v10")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)

    async def _api(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = await json_body(request)
        parts = path.strip("/").split("/")
        answer: dict[str, Any]
        status = 200
        if request.method == "POST" and path == "/users/@me/channels":
            answer = {"id": f"DM-{body.get('recipient_id')}", "type": 1}
        elif request.method == "POST" and len(parts) == 3 and parts[0] == "channels":
            answer = {"id": str(next(self._ids)), "channel_id": parts[1], **body}
        elif request.method == "PATCH" and len(parts) == 4 and parts[0] == "channels":
            answer = {"id": parts[3], "channel_id": parts[1], **body}
        else:
            status, answer = 404, {"message": "Unknown route", "code": 0}
        self.record(
            HttpCall(request.method, path, request.headers.get("Authorization", ""), body, answer)
        )
        return web.json_response(answer, status=status)
