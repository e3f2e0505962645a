"""A real webhook endpoint for tests: a threaded local HTTP server that records every POST and
answers as a plan says (status, and how long to stall before answering)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functionlayer_server import verify_webhook_signature


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    status: int
    """What the receiver answered (or would have: a stalled answer may reach nobody); 400
    for a body cut short (the sender died while sending)."""

    @property
    def id(self) -> str:
        return self.headers["x-functionlayer-delivery"]

    @property
    def type(self) -> str:
        return self.headers["x-functionlayer-event"]

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def call_id(self) -> str:
        return str(self.payload["event"]["call_id"])

    def signed_by(self, secret: str) -> bool:
        return verify_webhook_signature(
            secret,
            self.body,
            self.headers["functionlayer-timestamp"],
            self.headers["functionlayer-signature"],
        )


Plan = Callable[[int, bytes], tuple[int, float]]
"""``plan(index of this POST, body) -> (status, seconds to stall before answering)``."""


class Receiver:
    def __init__(self, plan: Plan | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self._plan: Plan = plan or (lambda index, body: (200, 0.0))
        self._changed = threading.Condition()
        self._received = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing to answer
                    with outer._changed:
                        outer.deliveries.append(
                            Delivery({k.lower(): v for k, v in self.headers.items()}, body, 400)
                        )
                        outer._changed.notify_all()
                    return
                with outer._changed:
                    status, stall = outer._plan(outer._received, body)
                    outer._received += 1
                headers = {k.lower(): v for k, v in self.headers.items()}
                if stall:
                    time.sleep(stall)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting
                    status = 599
                with outer._changed:
                    outer.deliveries.append(Delivery(headers, body, status))
                    outer._changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float) -> bool:
        """Wait until ``predicate(deliveries)`` holds (True) or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.deliveries)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.2))
            return True

    def accepted(self) -> list[Delivery]:
        """The deliveries answered with 2xx."""
        with self._changed:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
