"""The scripted model's HTTP server on 127.0.0.1 (see :mod:`functionlayer.testing.model`):
standard library only, imported when a server starts."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from functionlayer.testing._openai_wire import (
    chat_body,
    chat_chunks,
    model_card,
    response_body,
)
from functionlayer.testing._script import ModelScript, Reply, Request, ScriptedToolCall, resolve

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

__all__ = ["ScriptedModel"]


class ScriptedModel:
    """An OpenAI-compatible server on 127.0.0.1 answering from a script (see the module doc).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, script: ModelScript, *, model: str = "scripted-model", port: int = 0
    ) -> None:
        if not callable(script) and not isinstance(script, Sequence):
            raise TypeError("script must be a list of steps or a function (request) -> Reply")
        self._script = script
        self._position = 0
        self.model = model
        self._port = port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[Request] = []
        """Every request body sent to the completions/responses endpoints, in order."""
        self.errors: list[str] = []
        """The message of every request that got an error answer."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: pass as ``base_url=`` or ``OPENAI_BASE_URL``."""
        if self._server is None:
            raise RuntimeError("the scripted model is not running; call start() or use `with`")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def gemini_base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the Gemini API's base URL (``generateContent``) for
        ``google-genai`` / Google ADK (``Gemini(base_url=...)``, ``GOOGLE_GEMINI_BASE_URL``)."""
        return self.base_url.removesuffix("/v1")

    @property
    def remaining(self) -> int | None:
        """Steps not used yet (``None`` for a function script)."""
        if callable(self._script):
            return None
        return len(self._script) - self._position

    def start(self) -> ScriptedModel:
        from http.server import ThreadingHTTPServer

        server = ThreadingHTTPServer(
            ("127.0.0.1", self._port), _make_handler(self), bind_and_activate=False
        )
        server.daemon_threads = True
        # The stdlib listens with a backlog of 5, which resets connections when many agents
        # call the model at once on a loaded machine.
        server.request_queue_size = 1024
        try:
            server.server_bind()
            server.server_activate()
        except BaseException:
            server.server_close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="functionlayer-scripted-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ---------------------------------------------------------------------------
    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            if callable(self._script):
                reply = self._script(request)
                if reply is None:
                    raise _ScriptError(
                        f"the script function returned no reply to request #{number}"
                    )
                return resolve(reply, request)
            if self._position >= len(self._script):
                raise _ScriptError(
                    f"script exhausted: all {len(self._script)} steps were used, "
                    f"and request #{number} asked for one more"
                )
            step = self._script[self._position]
            self._position += 1
        return resolve(step, request)

    def _new_call_id(self) -> str:
        return f"call_{uuid.uuid4().hex[:24]}"

    def _fill_ids(self, reply: Reply) -> list[tuple[str, ScriptedToolCall]]:
        return [(call.id or self._new_call_id(), call) for call in reply.tool_calls]


class _ScriptError(Exception):
    pass


def _make_handler(model: ScriptedModel) -> type:
    from http.server import BaseHTTPRequestHandler

    from functionlayer.testing import _gemini

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read stdout
            pass

        def _send_json(self, status: int, body: Any, headers: Mapping[str, str] = {}) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_error(self, status: int, message: str) -> None:
            model.errors.append(message)
            # x-should-retry: the openai SDK would otherwise retry a 500 twice with backoff.
            self._send_json(
                status,
                {
                    "error": {
                        "message": f"ScriptedModel: {message}",
                        "type": "server_error",
                        "code": None,
                    }
                },
                {"x-should-retry": "false"},
            )

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v1/models":
                self._send_json(200, {"object": "list", "data": [model_card(model.model)]})
            elif path.startswith("/v1/models/"):
                self._send_json(200, model_card(path.rsplit("/", 1)[1]))
            else:
                self._send_error(404, f"no such endpoint: GET {path}")

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                request = json.loads(raw or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as exc:
                self._send_error(400, f"request body is not valid JSON: {exc}")
                return
            gemini = _gemini.route(path)
            if gemini is not None:
                self._gemini(gemini[0], gemini[1], request)
                return
            if path not in ("/v1/chat/completions", "/v1/responses"):
                self._send_error(404, f"no such endpoint: POST {path}")
                return
            if path == "/v1/responses" and request.get("stream"):
                self._send_error(400, "streaming is not supported on /v1/responses")
                return
            scripted = self._scripted(lambda: request)
            if scripted is None:
                return
            reply, calls = scripted
            name = str(request.get("model") or model.model)
            if path == "/v1/responses":
                self._send_json(200, response_body(name, request, reply, calls))
            elif request.get("stream"):
                self._stream_chat(name, request, reply, calls)
            else:
                self._send_json(200, chat_body(name, request, reply, calls))

        def _scripted(
            self, request: Callable[[], Request]
        ) -> tuple[Reply, list[tuple[str, ScriptedToolCall]]] | None:
            """The script's next reply to ``request()`` and its tool calls (ids filled in); None
            when the script or the request failed, the error already sent (a broken script
            answers, not hangs the client)."""
            try:
                reply = model._next_reply(request())
                return reply, model._fill_ids(reply)
            except Exception as exc:
                self._send_error(
                    500,
                    str(exc) if isinstance(exc, _ScriptError) else f"script step failed: {exc!r}",
                )
                return None

        def _gemini(self, name: str, streamed: bool, body: Request) -> None:
            scripted = self._scripted(lambda: _gemini.as_script_request(name, body))
            if scripted is None:
                return
            reply, calls = scripted
            answer = _gemini.candidate_body(name, reply, calls)
            if not streamed:
                self._send_json(200, answer)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(b"data: " + json.dumps(answer).encode() + b"\r\n\r\n")
            self.wfile.flush()

        def _stream_chat(
            self,
            name: str,
            request: Request,
            reply: Reply,
            calls: list[tuple[str, ScriptedToolCall]],
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for chunk in chat_chunks(name, request, reply, calls):
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler
