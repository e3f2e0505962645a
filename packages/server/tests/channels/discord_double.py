"""A local double of Discord's REST API for tests: a real aiohttp server on 127.0.0.1 that
records every call (method, path, Authorization header, JSON body) and answers the way Discord
does for the three routes the server uses (open a DM, create a message, edit a message)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class DiscordCall:
    method: str
    path: str
    authorization: str
    body: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class DiscordDouble:
    calls: list[DiscordCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(900_000_000_000_000_001)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    def start(self) -> DiscordDouble:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="discord-double")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Discord double did not start")
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
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

    async def _api(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body = json.loads(raw) if raw else {}
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
        with self._lock:
            self.calls.append(
                DiscordCall(
                    request.method,
                    path,
                    request.headers.get("Authorization", ""),
                    body,
                    answer,
                )
            )
        return web.json_response(answer, status=status)

    def find(
        self, method: str, where: Callable[[DiscordCall], bool] = lambda c: True
    ) -> list[DiscordCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and where(c)]

    async def await_for(
        self,
        method: str,
        count: int = 1,
        where: Callable[[DiscordCall], bool] = lambda c: True,
        timeout: float = 10.0,
    ) -> list[DiscordCall]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.find(method, where)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} {method} calls, got {found}")
            await asyncio.sleep(0.02)
