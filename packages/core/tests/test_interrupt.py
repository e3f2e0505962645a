"""Ctrl-C and the SIGINT handler the HTTP backend installs, in real subprocesses: the host's own
handler still gets Ctrl-C when no wait is open, and a wait on a worker thread against a server
that never answers (not even the abandon) still ends the program within seconds, saying so."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

CHAINED = textwrap.dedent(
    """
    import os, signal, time
    from functionlayer import FunctionLayer

    seen = []
    signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    fl = FunctionLayer(api_base="http://127.0.0.1:9/functionlayer/v1", api_token="t")
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    print("HOST HANDLER", seen)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        fl2 = FunctionLayer(api_base="http://127.0.0.1:9/functionlayer/v1", api_token="t")
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        print("KEYBOARD INTERRUPT")
    """
)


def test_without_an_open_wait_ctrl_c_goes_to_the_hosts_own_handler() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHAINED], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert f"HOST HANDLER [{int(signal.SIGINT)}]" in out.stdout, out.stdout
    assert "KEYBOARD INTERRUPT" in out.stdout, out.stdout


class _SilentServer(BaseHTTPRequestHandler):
    """Stores the request, then never answers a long-poll nor an abandon."""

    waiting = threading.Event()
    release = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/function_calls"):
            call = json.loads(body)
            call["status"] = {"requested_at": "2026-01-01T00:00:00Z"}
            data = json.dumps(call).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if "/claim_when_approved" in self.path:  # the decorator's claiming long-poll
            self.waiting.set()
        self.release.wait(30)  # the long-poll or the abandon: no answer

    def do_GET(self) -> None:
        self.waiting.set()
        self.release.wait(30)  # the long-poll: no answer


@pytest.fixture
def silent_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentServer)
    server.daemon_threads = True
    _SilentServer.waiting.clear()
    _SilentServer.release.clear()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/functionlayer/v1"
    finally:
        _SilentServer.release.set()
        server.shutdown()
        server.server_close()


WORKER = textwrap.dedent(
    """
    import sys, threading
    from functionlayer import FunctionLayer

    fl = FunctionLayer(api_base=sys.argv[1], api_token="t")

    @fl.require_approval
    def multiply(x: int, y: int) -> int:
        print("RAN")
        return x * y

    worker = threading.Thread(target=lambda: print("RESULT", multiply(2, 5)))
    worker.start()
    worker.join()
    """
)


def test_ctrl_c_ends_a_worker_threads_wait_on_a_server_that_never_answers(
    silent_server: str,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, silent_server],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _SilentServer.waiting.wait(60), "the agent never long-polled"
        time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert took < 4.0, took  # the abandon's second, then the grace second
    assert "Traceback" not in err and "RAN" not in out and "RESULT" not in out, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [
        "Interrupted (Ctrl-C): multiply was not run; the server could not be told, so the "
        "request stays pending there. Stopping."
    ], err
