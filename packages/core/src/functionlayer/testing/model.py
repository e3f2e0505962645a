"""A scripted, OpenAI-compatible model server for offline tests and examples.

``ScriptedModel`` serves the chat-completions API (``POST /v1/chat/completions``, streaming
and not), ``GET /v1/models``, a non-streaming Responses API (``POST /v1/responses``) and the Gemini
API's ``generateContent`` (see ``functionlayer.testing._gemini``) on 127.0.0.1. Point any OpenAI client (the ``openai`` SDK, LangChain's ``ChatOpenAI``, CrewAI,
ControlFlow) at ``model.base_url`` and it answers from a script instead of an LLM::

    from functionlayer.testing import ScriptedModel, text, tool_call

    with ScriptedModel([tool_call("multiply", {"x": 2, "y": 5}), text("It is 10.")]) as model:
        client = openai.OpenAI(base_url=model.base_url, api_key="unused")
        ...
        assert tool_results(model.requests[-1])[0].content == "10"

A script is a list of steps, used one per model request, or a single function
``(request) -> Reply`` called for every request. A step is a :class:`Reply` or a function
``(request) -> Reply``; ``request`` is the JSON body the client sent (``request["messages"]``,
``request["tools"]``). Every request is recorded in ``model.requests``. A request that finds
the script exhausted (or a step that raises) gets HTTP 500 with a message saying so, and the
message is kept in ``model.errors``; nothing hangs.

Run it standalone with ``python -m functionlayer.testing.model [--script steps.json]``.
Only the standard library is used, imported when a server starts.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

__all__ = [
    "ModelScript",
    "Reply",
    "ScriptedModel",
    "ScriptedToolCall",
    "Step",
    "ToolResult",
    "mark_task_successful",
    "math_script",
    "text",
    "tool_call",
    "tool_calls",
    "tool_results",
]

Request: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class ScriptedToolCall:
    """One tool call the model makes. ``arguments`` may be a raw string (e.g. malformed JSON)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    """The tool call id; a fresh unique ``call_...`` id when ``None``."""

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class Reply:
    """What the model answers to one request: text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()


Step: TypeAlias = Reply | Callable[[Request], Reply]
"""A scripted reply, or a function of the request that builds one."""

ModelScript: TypeAlias = Sequence[Step] | Callable[[Request], "Reply | None"]


def _resolve(step: Step, request: Request) -> Reply:
    reply = step(request) if callable(step) else step
    if not isinstance(reply, Reply):
        raise TypeError(f"a script step must give a Reply, got {type(reply).__name__}")
    return reply


def text(content: str | Callable[[Request], str]) -> Step:
    """A plain assistant message; ``content`` may be a function of the request."""
    if callable(content):
        build = content
        return lambda request: Reply(content=build(request))
    return Reply(content=content)


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | str | Callable[[Request], Mapping[str, Any]] | None = None,
    *,
    id: str | None = None,
) -> Step:
    """One tool call. ``arguments`` may be a dict, a raw JSON string, or a function of the request."""
    if callable(arguments):
        build = arguments
        return lambda request: Reply(tool_calls=(ScriptedToolCall(name, build(request), id),))
    return Reply(
        tool_calls=(ScriptedToolCall(name, arguments if arguments is not None else {}, id),)
    )


def tool_calls(*steps: Step) -> Step:
    """Several tool calls in one model turn: ``tool_calls(tool_call("a", ...), tool_call("b", ...))``."""

    def merge(request: Request) -> Reply:
        calls: list[ScriptedToolCall] = []
        for step in steps:
            calls.extend(_resolve(step, request).tool_calls)
        return Reply(tool_calls=tuple(calls))

    if any(callable(step) for step in steps):
        return merge
    return merge({})


_MARK_TASK = re.compile(r"^mark_task_.+_successful$")


def mark_task_successful(result: Any | Callable[[Request], Any] = None) -> Step:
    """ControlFlow: call the request's ``mark_task_<id>_successful`` tool with ``{"result": ...}``.

    ``result`` may be a function of the request. Fails (HTTP 500) if the request offers no
    such tool, so a misconfigured test says why instead of looping.
    """

    def build(request: Request) -> Reply:
        names = [_tool_name(t) for t in request.get("tools") or []]
        matches = [n for n in names if n and _MARK_TASK.match(n)]
        if not matches:
            raise LookupError(f"no mark_task_<id>_successful tool in the request; tools: {names}")
        value = result(request) if callable(result) else result
        return Reply(tool_calls=(ScriptedToolCall(matches[0], {"result": value}),))

    return build


def _tool_name(tool: Mapping[str, Any]) -> str | None:
    function = tool.get("function")
    if isinstance(function, Mapping):  # chat-completions form
        return function.get("name")
    return tool.get("name")  # Responses API flat form


@dataclass(frozen=True)
class ToolResult:
    """A tool result the client sent back to the model."""

    call_id: str
    name: str | None
    """The name of the tool the model called with that id, when the history shows it."""
    content: str


def tool_results(request: Request) -> list[ToolResult]:
    """The tool results in a chat-completions or Responses request, oldest first."""
    names: dict[str, str] = {}
    results: list[ToolResult] = []
    for message in request.get("messages") or []:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name")
        if message.get("role") == "tool":
            call_id = message.get("tool_call_id", "")
            results.append(ToolResult(call_id, names.get(call_id), _content_text(message)))
    inputs = request.get("input")
    if isinstance(inputs, list):
        for item in inputs:
            if item.get("type") == "function_call":
                names[item.get("call_id", "")] = item.get("name")
            elif item.get("type") == "function_call_output":
                call_id = item.get("call_id", "")
                output = item.get("output")
                results.append(
                    ToolResult(call_id, names.get(call_id), _content_text({"content": output}))
                )
    return results


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def _as_number(value: str) -> int | float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def math_script(*, finish: Callable[[str], Step] = text) -> Callable[[Request], Reply]:
    """The math example's model: "multiply 2 and 5, then add 32 to the result".

    It calls ``multiply(x=2, y=5)``, then ``add(x=<product>, y=32)`` with whatever multiply
    returned, then finishes with ``finish(answer)`` (a text reply by default; pass
    ``mark_task_successful`` for ControlFlow). If a tool result is not a number (a rejection,
    a fail-closed message), it finishes by reporting that result instead of going on.
    """

    def script(request: Request) -> Reply:
        results = tool_results(request)
        if not results:
            return _resolve(tool_call("multiply", {"x": 2, "y": 5}), request)
        last = results[-1]
        number = _as_number(last.content)
        if number is None:
            answer = f"I could not finish the calculation. The {last.name or 'tool'} tool said: {last.content}"
        elif last.name == "multiply":
            return _resolve(tool_call("add", {"x": number, "y": 32}), request)
        else:
            answer = f"2 multiplied by 5 is {_product(results)}, and adding 32 gives {number}."
        return _resolve(finish(answer), request)

    return script


def _product(results: list[ToolResult]) -> str:
    return next((r.content for r in results if r.name == "multiply"), "?")


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
                return _resolve(reply, request)
            if self._position >= len(self._script):
                raise _ScriptError(
                    f"script exhausted: all {len(self._script)} steps were used, "
                    f"and request #{number} asked for one more"
                )
            step = self._script[self._position]
            self._position += 1
        return _resolve(step, request)

    def _new_call_id(self) -> str:
        return f"call_{uuid.uuid4().hex[:24]}"

    def _fill_ids(self, reply: Reply) -> list[tuple[str, ScriptedToolCall]]:
        return [(call.id or self._new_call_id(), call) for call in reply.tool_calls]


class _ScriptError(Exception):
    pass


def _usage(request: Request, reply: Reply) -> dict[str, int]:
    # Rough token counts (4 characters a token): clients only need plausible numbers.
    prompt = max(1, len(json.dumps(request.get("messages") or request.get("input") or "")) // 4)
    completion = (
        len(reply.content or "") // 4
        + sum(len(c.name) + len(c.arguments_json()) for c in reply.tool_calls) // 4
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunks(value: str, parts: int) -> list[str]:
    """Split ``value`` into up to ``parts`` non-empty pieces (streamed arguments arrive split)."""
    if not value:
        return []
    size = max(1, -(-len(value) // parts))
    return [value[i : i + size] for i in range(0, len(value), size)]


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
                self._send_json(200, {"object": "list", "data": [_model_card(model.model)]})
            elif path.startswith("/v1/models/"):
                self._send_json(200, _model_card(path.rsplit("/", 1)[1]))
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
            try:
                reply = model._next_reply(request)
                calls = model._fill_ids(reply)
            except Exception as exc:  # a broken script must answer, not hang the client
                self._send_error(
                    500,
                    str(exc) if isinstance(exc, _ScriptError) else f"script step failed: {exc!r}",
                )
                return
            name = str(request.get("model") or model.model)
            if path == "/v1/responses":
                self._send_json(200, _response_body(name, request, reply, calls))
            elif request.get("stream"):
                self._stream_chat(name, request, reply, calls)
            else:
                self._send_json(200, _chat_body(name, request, reply, calls))

        def _gemini(self, name: str, streamed: bool, body: Request) -> None:
            try:
                reply = model._next_reply(_gemini.as_script_request(name, body))
                calls = model._fill_ids(reply)
            except Exception as exc:  # a broken script must answer, not hang the client
                self._send_error(
                    500,
                    str(exc) if isinstance(exc, _ScriptError) else f"script step failed: {exc!r}",
                )
                return
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
            for chunk in _chat_chunks(name, request, reply, calls):
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "functionlayer"}


def _chat_body(
    name: str, request: Request, reply: Reply, calls: list[tuple[str, ScriptedToolCall]]
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json()},
            }
            for cid, c in calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": _usage(request, reply),
    }


def _chat_chunks(
    name: str, request: Request, reply: Reply, calls: list[tuple[str, ScriptedToolCall]]
) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*|\s+", reply.content or ""):  # word by word
        yield chunk({"content": piece})
    for index, (cid, call) in enumerate(calls):
        head = {
            "index": index,
            "id": cid,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        for piece in _chunks(call.arguments_json(), 3):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if calls else "stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(request, reply)}


def _response_body(
    name: str, request: Request, reply: Reply, calls: list[tuple[str, ScriptedToolCall]]
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if reply.content is not None:
        output.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.content, "annotations": []}],
            }
        )
    for cid, call in calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:24]}",
                "call_id": cid,
                "name": call.name,
                "arguments": call.arguments_json(),
                "status": "completed",
            }
        )
    usage = _usage(request, reply)
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": name,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


# -- standalone ------------------------------------------------------------------------------
def _load_script(path: str) -> list[Step]:
    """A JSON list of steps: ``{"text": "..."}``, ``{"tool_call": {"name": ..., "arguments": {...}}}``
    or ``{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}``."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, list):
        raise ValueError(f"{path}: the script must be a JSON list of steps")
    steps: list[Step] = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: step {number} must be an object")
        if "text" in item:
            steps.append(Reply(content=str(item["text"])))
        elif "tool_call" in item or "tool_calls" in item:
            raw = item.get("tool_calls") or [item.get("tool_call")]
            calls = []
            for call in raw:
                if not isinstance(call, dict) or "name" not in call:
                    raise ValueError(f"{path}: step {number}: a tool call needs a name")
                calls.append(
                    ScriptedToolCall(call["name"], call.get("arguments") or {}, call.get("id"))
                )
            steps.append(Reply(tool_calls=tuple(calls)))
        else:
            raise ValueError(f"{path}: step {number} needs 'text', 'tool_call' or 'tool_calls'")
    return steps


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m functionlayer.testing.model",
        description="Serve a scripted OpenAI-compatible model on 127.0.0.1 (default: the math example's script).",
    )
    parser.add_argument("--script", help="a JSON file with a list of steps")
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    args = parser.parse_args(argv)
    script: ModelScript = _load_script(args.script) if args.script else math_script()
    with ScriptedModel(script, port=args.port) as model:
        print(model.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
