"""How a gateway or permission-prompt process ends: the requests it leaves are abandoned.

A gated call may wait for a person for a long time, or be held (``hold_seconds``) between the
client's retries under the same call id. While the process serves, such a request is *its*
request: a client request that times out and will be resumed keeps it. When the process itself
ends (its MCP client goes away, stdin closed; SIGINT; SIGTERM), nobody will ever run what it
asked about, so every request it created and nobody decided is reported abandoned on the server
(the creating token's ``POST /function_calls/{id}/abandon``), once, before the process exits: the
inbox says the agent stopped waiting, and a late approval runs nothing.

SIGINT and SIGTERM end serving the way the client leaving does (the in-flight handlers are
cancelled, nothing is forwarded); :func:`serve` returns the signal that stopped it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
from typing import Any

import anyio
from functionlayer import ConflictError, FunctionLayer, NotFoundError, adapters
from mcp.server.lowlevel import Server

from functionlayer_mcp._approval import warn

__all__ = ["Outstanding", "serve"]

#: Requests one process remembers to abandon; beyond it the oldest is left to expire on its own.
MAX_OUTSTANDING = 4096
#: How long telling the server may take in all when the process ends.
ABANDON_SECONDS = 3.0
#: After a signal, how long the process may take to unwind before it ends regardless.
GRACE_SECONDS = 1.0


class Outstanding:
    """The requests this process created and nobody decided yet, by call id."""

    def __init__(self, client: FunctionLayer) -> None:
        self.client = client
        self._ids: dict[str, None] = {}
        self.ending = False
        self.finished = False
        """Set once the process is ending: a cancelled wait is then the process's end (the
        request is abandoned with the others), not the client withdrawing one call."""

    def add(self, call_id: str) -> None:
        self._ids.pop(call_id, None)
        while len(self._ids) >= MAX_OUTSTANDING:
            del self._ids[next(iter(self._ids))]
        self._ids[call_id] = None

    def discard(self, call_id: str) -> None:
        self._ids.pop(call_id, None)

    def __len__(self) -> int:
        return len(self._ids)

    def abandon_all(self) -> int:
        """Tell the server every outstanding request was abandoned (each once, concurrently,
        within ``ABANDON_SECONDS``); how many it recorded. Forgets them either way."""
        ids, self._ids = list(self._ids), {}
        backend = self.client.backend
        if not ids or not backend.keeps_requests:
            return 0
        told = failed = 0
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(ids)))
        try:
            futures = [pool.submit(backend.abandon_function_call, i) for i in ids]
            done, late = concurrent.futures.wait(futures, timeout=ABANDON_SECONDS)
            failed = len(late)
            for future in done:
                error = future.exception()
                if error is None:
                    told += 1
                # decided meanwhile, or never created (a hold ended before the create did)
                elif not isinstance(error, ConflictError | NotFoundError):
                    failed += 1
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if failed:
            warn(f"{failed} request(s) could not be marked abandoned on the server")
        return told


async def serve(
    server: Server[Any, Any],
    outstanding: Outstanding,
    streams: tuple[Any, Any] | None = None,
) -> int | None:
    """Serve ``server`` on stdio (or ``streams``) until the client goes away or a SIGINT or
    SIGTERM arrives; then abandon what is outstanding. Returns the signal, if one stopped it."""
    # The core's own Ctrl-C handling (functionlayer._interrupt) would end the process from a
    # signal handler in the middle of the event loop; installed first, it is replaced by the
    # receiver below for as long as this serves, so the process ends here, in order.
    adapters.install_interrupt_handler()
    stopped_by: list[int] = []
    options = server.create_initialization_options()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_stop_on_signal, group.cancel_scope, outstanding, stopped_by)
            async with contextlib.AsyncExitStack() as stack:
                if streams is not None:
                    read, write = streams
                else:
                    from mcp.server.stdio import stdio_server

                    read, write = await stack.enter_async_context(stdio_server())
                send, receive = anyio.create_memory_object_stream[Any](0)
                group.start_soon(_relay, read, send, outstanding)
                await server.run(receive, write, options)
            outstanding.ending = True
            group.cancel_scope.cancel()
    finally:
        _finish(outstanding, "the client went away")
    return stopped_by[0] if stopped_by else None


def _finish(outstanding: Outstanding, why: str) -> None:
    """Abandon what is outstanding and say so on stderr; once."""
    if outstanding.finished:
        return
    outstanding.finished = outstanding.ending = True
    waiting = len(outstanding)
    told = outstanding.abandon_all()
    if waiting or why != "the client went away":
        warn(
            f"stopping ({why}): {waiting} request(s) still waiting for a person; "
            f"{told} marked abandoned on the server"
        )


async def _stop_on_signal(
    scope: anyio.CancelScope, outstanding: Outstanding, stopped_by: list[int]
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            stopped_by.append(signum)
            # Abandon first: unwinding waits for the SDK's stdin reader, a thread that only
            # returns when the client writes or closes; the process ends GRACE_SECONDS later.
            _finish(outstanding, signal.Signals(signum).name)
            adapters.exit_after(GRACE_SECONDS, 128 + signum)
            scope.cancel()
            return


async def _relay(read: Any, send: Any, outstanding: Outstanding) -> None:
    """Pass the client's messages on; once the client closed its stream, mark the process as
    ending before the server sees the end (and cancels the calls still waiting)."""
    async with send:
        try:
            async for item in read:
                await send.send(item)
        finally:
            outstanding.ending = True
