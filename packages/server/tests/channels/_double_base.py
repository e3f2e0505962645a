"""What the channel doubles (Slack, Discord, Teams) share: a real aiohttp server on 127.0.0.1
(a free port) in a thread of its own, a record of the calls it answered, and waiting for them.

A double subclasses :class:`LocalDouble`, adds its routes in :meth:`LocalDouble.add_routes` and
records what it answered with :meth:`LocalDouble.record`."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from aiohttp import web


class _Call(Protocol):
    method: str


CallT = TypeVar("CallT", bound=_Call)


@dataclass
class HttpCall:
    """One request a REST double answered: method, path, Authorization header, JSON body."""

    method: str
    path: str
    authorization: str
    body: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)


class Address:
    """A URL on the running double: ``http://127.0.0.1:<port><path>``, read as an attribute."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __get__(self, double: LocalDouble[Any], owner: type | None = None) -> str:
        return f"http://127.0.0.1:{double.port}{self.path}"


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body)."""
    raw = await request.read()
    return dict(json.loads(raw)) if raw else {}


@dataclass
class LocalDouble(Generic[CallT]):
    calls: list[CallT] = field(default_factory=list)

    name: ClassVar[str] = "local"
    """Who this doubles, for the thread's name and the error if it does not start."""
    timeout: ClassVar[float] = 10.0
    """How long ``wait_for`` waits by default."""

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- what a double adds --------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def before_cleanup(self) -> None:
        """Called on the double's loop as it stops, before the server is cleaned up."""

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, f"the {self.name} double is not running"
        return self._loop

    def start(self) -> Self:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=f"{self.name}-double")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the {self.name} double did not start")
        return self

    async def _serve(self) -> None:
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            await self.before_cleanup()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    # -- the record ----------------------------------------------------------------------------

    def record(self, call: CallT) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def find(self, method: str, where: Callable[[CallT], bool] | None = None) -> list[CallT]:
        with self._cond:
            return [c for c in self.calls if c.method == method and (where is None or where(c))]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        where: Callable[[CallT], bool] | None = None,
        timeout: float | None = None,
    ) -> list[CallT]:
        """Block until at least ``count`` matching calls were made; returns them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.find(method, where)) >= count, self._for(timeout))
            return self._enough(method, count, where)

    async def await_for(
        self,
        method: str,
        count: int = 1,
        *,
        timeout: float | None = None,
        where: Callable[[CallT], bool] | None = None,
    ) -> list[CallT]:
        """``wait_for`` without blocking the event loop (for in-process servers): it looks
        every 20 ms, so the server has its turn to go on between two looks."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._for(timeout)
        while len(self.find(method, where)) < count and loop.time() <= deadline:
            await asyncio.sleep(0.02)
        return self._enough(method, count, where)

    def _for(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _enough(
        self, method: str, count: int, where: Callable[[CallT], bool] | None
    ) -> list[CallT]:
        """The matching calls, failing the test if there are fewer than ``count``."""
        found = self.find(method, where)
        if len(found) < count:
            raise AssertionError(
                f"expected {count} {method} call(s), got {len(found)}: "
                f"{[c.method for c in self.calls]}"
            )
        return found
