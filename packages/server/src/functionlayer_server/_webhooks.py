"""Signed webhook delivery, off the request path.

On completion the server POSTs ``{"type": "function_call.completed", "event": FunctionCall}``
(or ``human_contact.completed``) to every configured URL with

    FunctionLayer-Timestamp: <unix seconds>
    FunctionLayer-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

Non-2xx answers and network errors are retried with exponential backoff (0.5 s, 1 s, 2 s, ...
capped at 60 s) up to ``webhook_max_attempts``. Deliveries are in memory: a server restart drops
the ones still being retried (agents never depend on webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from functionlayer_server._service import FUNCTION_CALL, ServiceEvent
from functionlayer_server._settings import Settings

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookDispatcher",
    "sign",
    "verify_signature",
]

log = logging.getLogger("functionlayer_server.webhooks")

TIMESTAMP_HEADER = "FunctionLayer-Timestamp"
SIGNATURE_HEADER = "FunctionLayer-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class WebhookDispatcher:
    def __init__(self, settings: Settings, *, max_concurrency: int = 16) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.base_delay = 0.5
        self.max_delay = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self._settings.webhook_urls)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def on_event(self, event: ServiceEvent) -> None:
        """Service listener: queue a delivery per URL for each completed request."""
        if event.type != "decided" or not self.enabled:
            return
        payload = self.payload_for(event)
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        for url in self._settings.webhook_urls:
            task = asyncio.create_task(self._deliver(url, body, str(payload["type"])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes, event_type: str) -> None:
        delay = self.base_delay
        attempts = self._settings.webhook_max_attempts
        for attempt in range(1, attempts + 1):
            headers = {"Content-Type": "application/json", "FunctionLayer-Event": event_type}
            secret = self._settings.webhook_secret
            if secret:
                ts = int(time.time())
                headers[TIMESTAMP_HEADER] = str(ts)
                headers[SIGNATURE_HEADER] = sign(secret, ts, body)
            error: str
            try:
                async with self._semaphore:
                    assert self._client is not None
                    response = await self._client.post(url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt == attempts:
                log.error(
                    "webhook to %s failed after %d attempts (%s); giving up", url, attempts, error
                )
                return
            log.warning("webhook to %s failed (%s); retry %d in %.1fs", url, error, attempt, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)

    def payload_for(self, event: ServiceEvent) -> dict[str, Any]:
        kind = "function_call" if event.kind == FUNCTION_CALL else "human_contact"
        return {"type": f"{kind}.completed", "event": event.request.model_dump(mode="json")}
