"""Webhooks reach a real local receiver, signed (HMAC-SHA256 over "<timestamp>.<body>"),
retried after a failure, without slowing down the answer that triggered them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functionlayer_server import verify_webhook_signature

from .conftest import ServerFactory

SECRET = "whsec-test-123"


class Receiver:
    """A webhook endpoint that fails its first delivery slowly (1.5 s, then 500)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes, int]] = []
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                first = not outer.deliveries
                status = 500 if first else 200
                outer.deliveries.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
                if first:
                    time.sleep(1.5)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if not first:
                    outer.event.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def test_signed_webhook_with_retry(server_factory: ServerFactory) -> None:
    receiver = Receiver()
    try:
        srv = server_factory(
            env={
                "FUNCTIONLAYER_SERVER_WEBHOOK_URLS": receiver.url,
                "FUNCTIONLAYER_SERVER_WEBHOOK_SECRET": SECRET,
            }
        )
        client = srv.client()
        client.post(
            "/function_calls",
            json={"run_id": "r", "call_id": "wh-1", "spec": {"fn": "pay", "kwargs": {"n": 1}}},
        )
        human = srv.approver_client()
        started = time.monotonic()
        answer = human.post(
            "/agent/function_calls/wh-1/respond", json={"approved": False, "comment": "no"}
        )
        assert answer.status_code == 200
        assert time.monotonic() - started < 1.0, "the answer waited for the webhook"
        assert receiver.event.wait(20), "no successful delivery"

        assert [status for _, _, status in receiver.deliveries] == [500, 200]
        headers, body, _ = receiver.deliveries[-1]
        timestamp = headers["functionlayer-timestamp"]
        expected = (
            "v1="
            + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        )
        assert hmac.compare_digest(headers["functionlayer-signature"], expected)
        assert abs(time.time() - int(timestamp)) < 60
        assert verify_webhook_signature(SECRET, body, timestamp, headers["functionlayer-signature"])
        assert not verify_webhook_signature(
            "other-secret", body, timestamp, headers["functionlayer-signature"]
        )
        assert not verify_webhook_signature(
            SECRET, body + b" ", timestamp, headers["functionlayer-signature"]
        )
        stale = str(int(timestamp) - 3600)
        assert not verify_webhook_signature(SECRET, body, stale, headers["functionlayer-signature"])

        payload = json.loads(body)
        assert payload["type"] == "function_call.completed"
        assert payload["event"]["call_id"] == "wh-1"
        assert payload["event"]["status"]["approved"] is False
        assert payload["event"]["status"]["comment"] == "no"
        assert payload["event"]["status"]["responded_by"] == "approver"

        client.post(
            "/contact_requests", json={"run_id": "r", "call_id": "wh-c", "spec": {"msg": "?"}}
        )
        receiver.event.clear()
        human.post("/agent/human_contacts/wh-c/respond", json={"response": "yes"})
        assert receiver.event.wait(20)
        payload = json.loads(receiver.deliveries[-1][1])
        assert payload["type"] == "human_contact.completed"
        assert payload["event"]["status"]["response"] == "yes"
    finally:
        receiver.close()
