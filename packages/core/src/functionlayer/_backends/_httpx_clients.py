"""httpx clients for async requests when ``HttpBackend`` uses httpx (a plugged-in transport, or
a proxy)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

__all__ = ["AsyncClients"]


class AsyncClients:
    """Small httpx AsyncClients, each request sent through the least busy one.

    httpcore's pool scans every connection for every queued request on each state change, so
    one client holding many concurrent long-polls costs CPU that grows with the cube of the
    concurrency (50 agents: ~55 cycles/s instead of hundreds). Shards of at most
    ``PER_CLIENT`` concurrent requests keep each scan short; a shard's cap equals its
    connection limit, so no request ever queues inside httpx.
    """

    PER_CLIENT = 8

    def __init__(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._busy: list[int] = []

    def _pick(self) -> int:
        if self._busy:
            index = min(range(len(self._busy)), key=self._busy.__getitem__)
            if self._busy[index] < self.PER_CLIENT:
                return index
        limits = httpx.Limits(
            max_connections=self.PER_CLIENT, max_keepalive_connections=self.PER_CLIENT
        )
        if self._ssl is None:  # loading the CA bundle costs ~40 ms: once, not per shard
            self._ssl = httpx.create_ssl_context()
        client = httpx.AsyncClient(transport=self._transport, limits=limits, verify=self._ssl)
        self._clients.append(client)
        self._busy.append(0)
        return len(self._clients) - 1

    async def request(self, args: dict[str, Any]) -> httpx.Response:
        index = self._pick()
        self._busy[index] += 1
        try:
            return await self._clients[index].request(**args)
        finally:
            self._busy[index] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._busy.clear()
