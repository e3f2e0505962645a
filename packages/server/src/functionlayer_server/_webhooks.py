"""Signed, durable webhook delivery from the outbox, off the request path.

The service writes one outbox row per (event, URL) in the transaction that makes the change
(see ``_outbox``). The worker started with the app delivers due rows: it claims a row with a
compare-and-set (of several server processes sharing a PostgreSQL database, one wins), POSTs
its payload, and records the outcome. Nothing is lost across restarts or ``kill -9``: a row is
pending until a 2xx answer is recorded, and a claim whose process died goes stale after
``webhook_timeout_seconds`` plus a margin and is taken again. Delivery is at least once, so
receivers de-duplicate on the delivery id. Each POST carries::

    X-FunctionLayer-Delivery: <event id, the same for every retry>
    X-FunctionLayer-Event: <type, e.g. function_call.completed>
    FunctionLayer-Timestamp: <unix seconds>
    FunctionLayer-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

Non-2xx answers, network errors and timeouts are retried with exponential backoff
(``webhook_retry_base_seconds``, doubled per attempt, capped at ``webhook_retry_max_seconds``)
up to ``webhook_max_attempts``; then the row is marked failed (kept) and the failure is added
to the request's audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx

from functionlayer_server._outbox import outbox_rows, webhook_event
from functionlayer_server._scheduler import worker_tick
from functionlayer_server._store import AuditRow, OutboxRow

if TYPE_CHECKING:
    from functionlayer_server._service import ApprovalService, ServiceEvent

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookDispatcher",
    "sign",
    "verify_signature",
]

log = logging.getLogger("functionlayer_server.webhooks")

TIMESTAMP_HEADER = "FunctionLayer-Timestamp"
SIGNATURE_HEADER = "FunctionLayer-Signature"
DELIVERY_HEADER = "X-FunctionLayer-Delivery"
EVENT_HEADER = "X-FunctionLayer-Event"
_LEGACY_EVENT_HEADER = "FunctionLayer-Event"  # sent before 0.4; same value as EVENT_HEADER


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


def _redact(url: str) -> str:
    """The URL without credentials, query or fragment (for logs and the audit trail)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class WebhookDispatcher:
    """The outbox worker of one server process (see the module docstring)."""

    def __init__(self, service: ApprovalService, *, max_concurrency: int = 16) -> None:
        self._service = service
        self._settings = service.settings
        self._store = service.store
        self._clock = service.clock
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[asyncio.Task[None], OutboxRow] = {}
        self._slots = asyncio.Semaphore(max_concurrency)
        self._wake = asyncio.Event()
        self.batch = 100

    @property
    def enabled(self) -> bool:
        return bool(self._settings.webhook_urls)

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds a row: one attempt (bounded by the timeout) plus a margin
        for recording its outcome. A claim older than this belongs to a dead process."""
        timeout = self._settings.webhook_timeout_seconds
        return timeout + max(1.0, timeout)

    def backoff(self, attempts: int) -> float:
        """The delay after the ``attempts``-th failed attempt."""
        base = self._settings.webhook_retry_base_seconds
        return float(
            min(base * 2 ** min(attempts - 1, 60), self._settings.webhook_retry_max_seconds)
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.enabled:
            return
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._settings.webhook_timeout_seconds)
        )
        self._task = asyncio.create_task(self._run(), name="fl-webhooks")

    async def stop(self) -> None:
        """Stop delivering; attempts cut short are made due again at once (for the next
        process), so a graceful stop delays nothing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        inflight = dict(self._inflight)
        for running in inflight:
            running.cancel()
        for running, row in inflight.items():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
            if running.cancelled():
                with contextlib.suppress(Exception):
                    await self._store.outbox_retry(
                        row.id,
                        row.attempts + 1,
                        next_attempt_at=self._clock.now(),
                        error="server stopped during the attempt",
                    )
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        self._wake.set()

    async def on_event(self, event: ServiceEvent) -> None:
        """Service listener: new rows were (normally) written with the change; deliver now.
        An event that came without rows is enqueued here, after the fact (durable from now
        on, but not atomic with its change)."""
        if not self.enabled:
            return
        if event.webhook_event_id is None:
            action = event.audit.action if event.audit is not None else None
            name = webhook_event(event.type, action)
            if name is not None:
                await self._store.add_outbox(
                    outbox_rows(
                        self._settings.webhook_urls,
                        event=name,
                        kind=event.kind,
                        project=event.project,
                        request=event.request.model_dump(mode="json"),
                        action=action,
                        now=self._clock.now(),
                    )
                )
        self.wake()

    # -- the worker -------------------------------------------------------------------------

    async def _run(self) -> None:
        max_sleep = self._settings.scheduler_interval_seconds
        while True:
            since = self._service.change_counter
            self._wake.clear()
            due = await worker_tick(
                self.run_once, self._store.next_outbox_due, log, "webhook outbox"
            )
            now = self._clock.now()
            sleep = max_sleep if due is None else min(max_sleep, max(due - now, 0.0))
            if sleep <= 0:
                continue
            # Woken by a local change (listener), a finished attempt, or a change made by
            # another process (PostgreSQL NOTIFY bumps the service's change counter).
            waits = {
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(self._service.wait_for_change(since, sleep)),
            }
            try:
                await asyncio.wait(waits, timeout=sleep, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def run_once(self) -> int:
        """Claim and start delivering the due rows (as many as there are free slots);
        returns how many were started."""
        started = 0
        for row in await self._store.due_outbox(self._clock.now(), limit=self.batch):
            await self._slots.acquire()  # claim only when we can send at once
            now = self._clock.now()
            try:
                claimed = await self._store.claim_outbox(
                    row, now, lease_until=now + self.lease_seconds
                )
            except BaseException:
                self._slots.release()
                raise
            if not claimed:  # another process took it, or it changed since we read it
                self._slots.release()
                continue
            task = asyncio.create_task(self._attempt(row))
            self._inflight[task] = row
            task.add_done_callback(self._done)
            started += 1
        return started

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._slots.release()
        self._wake.set()

    async def _attempt(self, row: OutboxRow) -> None:
        try:
            await self._attempt_once(row)
        except Exception:
            # The row stays claimed; it is due again when the claim goes stale.
            log.exception("webhook delivery %s (row %d) failed", row.event_id, row.id)

    async def _attempt_once(self, row: OutboxRow) -> None:
        """One POST of a claimed row, and its outcome recorded."""
        attempt = row.attempts + 1
        body = row.payload.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: row.event_id,
            EVENT_HEADER: row.type,
            _LEGACY_EVENT_HEADER: row.type,
        }
        secret = self._settings.webhook_secret
        if secret:
            ts = int(time.time())
            headers[TIMESTAMP_HEADER] = str(ts)
            headers[SIGNATURE_HEADER] = sign(secret, ts, body)
        error: str
        try:
            assert self._client is not None
            async with asyncio.timeout(self._settings.webhook_timeout_seconds):
                response = await self._client.post(row.url, content=body, headers=headers)
            if 200 <= response.status_code < 300:
                await self._store.outbox_delivered(row.id, self._clock.now())
                return
            error = f"HTTP {response.status_code}"
        except TimeoutError:
            error = f"no answer within {self._settings.webhook_timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        url = _redact(row.url)
        now = self._clock.now()
        if attempt >= self._settings.webhook_max_attempts:
            log.error(
                "webhook %s %s to %s failed after %d attempts (%s); giving up",
                row.type,
                row.event_id,
                url,
                attempt,
                error,
            )
            await self._store.outbox_failed(
                row.id,
                attempt,
                now,
                error,
                AuditRow(
                    kind=row.kind,
                    call_id=row.call_id,
                    at=now,
                    actor="functionlayer-server",
                    via="webhook",
                    action="webhook_failed",
                    project=_project_of(row),
                    details={
                        "event_id": row.event_id,
                        "type": row.type,
                        "url": url,
                        "attempts": attempt,
                        "error": error,
                    },
                ),
            )
            return
        delay = self.backoff(attempt)
        log.warning(
            "webhook %s %s to %s failed (%s); retry %d in %.1fs",
            row.type,
            row.event_id,
            url,
            error,
            attempt,
            delay,
        )
        await self._store.outbox_retry(row.id, attempt, next_attempt_at=now + delay, error=error)


def _project_of(row: OutboxRow) -> str | None:
    """The project a delivery is about (in its payload, as sent)."""
    try:
        project = json.loads(row.payload).get("project")
    except (ValueError, AttributeError):
        return None
    return project if isinstance(project, str) else None
