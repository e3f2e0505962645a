"""A long-poll held open for a client, ended early when the client goes away.

Each waiting agent costs the server memory for as long as it waits (10,000 of them on one
process), so the wait runs in the request's own task: the only helper is one small task that
reads the connection's next ASGI message (the disconnect), and a disconnect cancels the request's
task with a marked cancellation that ``unless_gone`` turns into ``None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

__all__ = ["unless_gone", "wake_at"]

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body of the request is read first:
    the ASGI messages after it are the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_gone(request: Request, waiting: Awaitable[T]) -> T | None:
    """``waiting``'s result, or ``None`` when the client closed the connection first (the wait
    is then cancelled). A cancellation from elsewhere (the server stopping) still propagates."""
    task = asyncio.current_task()
    assert task is not None
    gone = asyncio.ensure_future(_disconnected(request))
    over = False

    def client_left(_: asyncio.Future[None]) -> None:
        if not over and not gone.cancelled():
            task.cancel()

    gone.add_done_callback(client_left)
    try:
        return await waiting
    except asyncio.CancelledError:
        if gone.done() and not gone.cancelled() and task.uncancel() == 0:
            return None  # only our cancellation: the client went away
        raise
    finally:
        over = True
        gone.cancel()


def wake_at(deadline: float, future: asyncio.Future[T | None]) -> asyncio.TimerHandle:
    """Resolve ``future`` with ``None`` at ``deadline`` (loop time) unless it is done by then:
    a timed wait on one future, without ``asyncio.wait``'s set, waiter and callbacks."""
    return asyncio.get_running_loop().call_at(deadline, _wake, future)


def _wake(future: asyncio.Future[T | None]) -> None:
    if not future.done():
        future.set_result(None)
