"""A setup mistake (wrong token, wrong URL, approver token, server never reached) is said on
stderr once per process with its fix, besides failing the guarded call closed; a 404 for a
misspelt API path suggests the right URL, not the wrong one with the path appended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from functionlayer._backends._http_answers import api_path_hint as _api_path_hint

from packages.core.tests.protocol_server import Fault, ProtocolServer
from packages.core.tests.test_client_hints import _closed_port
from packages.core.tests.test_http_backend import http_path, http_path_now

__all__ = ["http_path"]  # the autouse fixture: every test here runs on both HTTP paths

AGENT = """
import httpx
from functionlayer import FunctionLayer, HttpBackend

fl = (
    FunctionLayer(connect_timeout=1)
    if PATH == "lean"
    else FunctionLayer(backend=HttpBackend(connect_timeout=1, transport=httpx.HTTPTransport()))
)
ran = []

@fl.require_approval
def wire(amount: int) -> str:
    ran.append(amount)
    return "sent"

for amount in (100, 200):
    print(wire(amount))
print("ran:", ran)
"""


def run_agent(base: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_")}
    env.update(FUNCTIONLAYER_API_BASE=base, FUNCTIONLAYER_API_TOKEN=token)
    script = f"PATH = {http_path_now()!r}\n" + AGENT
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "FunctionLayer" in line]


@pytest.fixture
def not_found_server() -> Iterator[str]:
    """Something at the URL that is not the API: every path answers 404."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"detail": "Not Found"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_wrong_token_is_said_once_on_stderr_with_the_fix() -> None:
    with ProtocolServer() as server:
        done = run_agent(server.base_url, "not-the-token")
    assert done.returncode == 0, done.stderr
    assert "ran: []" in done.stdout  # failed closed, twice
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "401" in lines[0] and "check FUNCTIONLAYER_API_TOKEN" in lines[0]


def test_an_approver_token_used_by_an_agent_is_said_on_stderr() -> None:
    with ProtocolServer() as server:
        server.inject(
            "POST",
            *[Fault(status=403, body=b'{"detail": "approver tokens decide"}') for _ in range(2)],
        )
        done = run_agent(server.base_url, server.token)
    assert "ran: []" in done.stdout
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "403" in lines[0] and "must be an agent token" in lines[0]


def test_a_misspelt_api_path_is_said_with_the_right_url(not_found_server: str) -> None:
    done = run_agent(not_found_server + "/functionlayr/v1", "t")
    assert "ran: []" in done.stdout
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert f"should be e.g. {not_found_server}/functionlayer/v1" in lines[0]
    assert "/functionlayr/v1/functionlayer/v1" not in done.stderr + done.stdout


def test_a_server_never_reached_is_said_on_stderr_within_the_connect_timeout() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/functionlayer/v1"
    done = run_agent(url, "t")
    assert "ran: []" in done.stdout
    lines = error_lines(done.stderr)
    errors = [line for line in lines if "cannot reach its server" in line]
    assert len(errors) == 1 and url in errors[0], done.stderr


@pytest.mark.parametrize(
    ("base", "hint"),
    [
        ("http://h:8080", "should be e.g. http://h:8080/functionlayer/v1"),
        ("http://h:8080/functionlayr/v1", "should be e.g. http://h:8080/functionlayer/v1"),
        ("https://h/proxy/fl/v2", "should be e.g. https://h/proxy/functionlayer/v1"),
        ("http://h:8080/functionlayer/v1", ""),
    ],
)
def test_the_api_path_hint(base: str, hint: str) -> None:
    text = _api_path_hint(base)
    assert (hint in text) if hint else text == ""
    assert "/v1/functionlayer/v1" not in text
