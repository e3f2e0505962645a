"""A small, real HTTP server of the open protocol with injectable faults, for the HTTP backend's tests.

It stores requests in an InMemoryBackend and serves them over a real socket (stdlib
ThreadingHTTPServer), so the backend's whole HTTP path runs: connection handling, long-poll
reads, status codes, JSON parsing. Faults are queued per route and consumed in order.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from functionlayer import Execution, ExecutionReport, FunctionCall, HumanContact
from functionlayer._errors import ConflictError, NotFoundError
from functionlayer.testing import InMemoryBackend


@dataclass
class Fault:
    """What to do instead of answering normally: a status code, a raw body, a delay, or a hang-up."""

    status: int | None = None
    body: bytes | None = None
    delay: float = 0.0
    drop_connection: bool = False
    after_processing: bool = False
    """Handle the request for real first, then apply the fault (a lost response)."""
    headers: dict[str, str] = field(default_factory=dict)


class ProtocolServer:
    def __init__(
        self,
        *,
        token: str = "secret-token",
        honour_wait: bool = True,
        store: InMemoryBackend | None = None,
    ) -> None:
        self.store = store if store is not None else InMemoryBackend()
        self.token = token
        self.honour_wait = honour_wait
        self.faults: dict[str, deque[Fault]] = {
            "POST": deque(),
            "GET": deque(),
            "RESPOND": deque(),
            "EXECUTION": deque(),
            "CLAIMING": deque(),
        }
        self.log: list[tuple[str, str, float]] = []  # (method, path with query, time)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        class Server(ThreadingHTTPServer):
            # The stdlib's listen backlog of 5 resets connections when a hundred waits connect at
            # once on a loaded machine; a real server (uvicorn, as `serve` runs it) listens with
            # a backlog in the thousands.
            request_queue_size = 1024

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/functionlayer/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ProtocolServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def inject(self, route: str, *faults: Fault) -> None:
        with self._lock:
            self.faults[route].extend(faults)

    def requests(self, method: str, path_part: str = "") -> list[tuple[str, str, float]]:
        # Execution claims and reports, and the claiming waits this server does not have (the
        # backend falls back to a plain wait), are counted only when asked for by path.
        return [
            entry
            for entry in self.log
            if entry[0] == method
            and path_part in entry[1]
            and ("/execution" not in entry[1] or "/execution" in path_part)
            and ("/claim_when_approved" not in entry[1] or "/claim_when_approved" in path_part)
        ]

    # -------------------------------------------------------------- dispatch

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        url = urlparse(handler.path)
        self.log.append((method, handler.path, time.monotonic()))
        route = "RESPOND" if url.path.endswith("/respond") else method
        if "/execution" in url.path:
            route = "EXECUTION"
        if "/claim_when_approved" in url.path:  # no such route here: like an older server
            route = "CLAIMING"
        with self._lock:
            fault = self.faults[route].popleft() if self.faults[route] else None
        if fault is not None and not fault.after_processing:
            if _delay_or_drop(handler, fault):
                return
            if fault.status is not None:
                self._send(
                    handler, fault.status, fault.body or b'{"detail": "injected"}', fault.headers
                )
                return
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(handler, 401, json.dumps({"detail": "missing or wrong API token"}).encode())
            return
        try:
            status, payload = self._route(method, url.path, parse_qs(url.query), raw)
        except NotFoundError as exc:
            status, payload = 404, {"detail": str(exc)}
        except ConflictError as exc:
            status, payload = 409, {"detail": str(exc)}
        if fault is not None and fault.after_processing:
            if _delay_or_drop(handler, fault):
                return
            if fault.status is not None:
                status = fault.status
        body = (
            fault.body
            if fault is not None and fault.body is not None
            else json.dumps(payload).encode()
        )
        self._send(handler, status, body)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes
    ) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("/") if p][2:]  # drop functionlayer/v1
        if method == "POST" and parts == ["function_calls"]:
            return 200, self.store.create_function_call(
                FunctionCall.model_validate_json(raw)
            ).model_dump(mode="json")
        if method == "POST" and len(parts) == 3 and parts[::2] == ["function_calls", "execution"]:
            claim = Execution.model_validate_json(raw)
            return 200, self.store.claim_execution(
                parts[1], claim.claim_id, claimed_by=claim.claimed_by
            ).model_dump(mode="json")
        if method == "POST" and len(parts) == 4 and parts[2:] == ["execution", "outcome"]:
            return 200, self.store.report_execution(
                parts[1], ExecutionReport.model_validate_json(raw)
            ).model_dump(mode="json")
        if method == "POST" and parts == ["contact_requests"]:
            return 200, self.store.create_human_contact(
                HumanContact.model_validate_json(raw)
            ).model_dump(mode="json")
        if (
            method == "GET"
            and len(parts) == 2
            and parts[0] in ("function_calls", "contact_requests")
        ):
            wait = float(query.get("wait", ["0"])[0]) if self.honour_wait else 0.0
            if parts[0] == "function_calls":
                item: Any = (
                    self.store.wait_function_call(parts[1], min(wait, 30.0))
                    if wait
                    else self.store.get_function_call(parts[1])
                )
            else:
                item = (
                    self.store.wait_human_contact(parts[1], min(wait, 30.0))
                    if wait
                    else self.store.get_human_contact(parts[1])
                )
            return 200, item.model_dump(mode="json")
        if method == "POST" and len(parts) == 4 and parts[0] == "agent" and parts[3] == "respond":
            body = json.loads(raw)
            if parts[1] == "function_calls":
                if body.get("expired"):
                    current = self.store.get_function_call(parts[2])
                    if current.completed:
                        raise ConflictError("already decided")
                    return 200, self.store.expire_function_call(
                        parts[2], body.get("comment") or "expired"
                    ).model_dump(mode="json")
                return 200, self.store.respond(
                    parts[2],
                    approved=bool(body["approved"]),
                    comment=body.get("comment"),
                    edited_kwargs=body.get("edited_kwargs"),
                    response=body.get("response"),
                ).model_dump(mode="json")
            if body.get("expired"):
                current_contact = self.store.get_human_contact(parts[2])
                if current_contact.completed:
                    raise ConflictError("already answered")
                return 200, self.store.expire_human_contact(parts[2], "expired").model_dump(
                    mode="json"
                )
            return 200, self.store.answer(parts[2], body["response"]).model_dump(mode="json")
        return 404, {"detail": f"no route {method} {path}"}

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


def _delay_or_drop(handler: BaseHTTPRequestHandler, fault: Fault) -> bool:
    """Apply the fault's delay; True when it then drops the connection (nothing is sent)."""
    time.sleep(fault.delay)
    if fault.drop_connection:
        handler.close_connection = True
        handler.connection.shutdown(2)
        return True
    return False
