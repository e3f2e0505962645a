"""``create_app(settings) -> FastAPI``: the agent API, the web inbox, error handling, the body
size limit, and a lifespan that opens the store and starts the scheduler and webhooks."""

from __future__ import annotations

import inspect
import json
import logging
import re
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import fastapi.routing
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functionlayer_server._api import API_PREFIX, LEGACY_PREFIX, install_api, is_fast_path
from functionlayer_server._channels import install_channels
from functionlayer_server._errors import AuthenticationError, QuotaExceededError, ServerError
from functionlayer_server._inbox import install_inbox
from functionlayer_server._scheduler import Clock
from functionlayer_server._service import ApprovalService
from functionlayer_server._settings import Settings
from functionlayer_server._store import open_store, prepare_database
from functionlayer_server._webhooks import WebhookDispatcher

__all__ = ["create_app"]


def _routes_with_paths(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, BaseRoute]]:
    """Every route under ``routes`` with its path there. FastAPI 0.150 and later include a
    router lazily (``iter_route_contexts`` walks them); earlier releases copy an included
    router's routes in, each with its full path (the server's floor is FastAPI 0.115)."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    if walk is None:
        for route in routes:
            yield str(getattr(route, "path", "")), route
        return
    for context in walk(routes):
        yield context.path or context.original_route.path, context.original_route


log = logging.getLogger("functionlayer_server")

# pydantic 2.12 warns about the aliases FastAPI 0.150 itself attaches to body parameters.
warnings.filterwarnings(
    "ignore", message=r"The 'alias' attribute with value", module=r"pydantic\..*"
)

VERSION = "0.1.0"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the server. Creates the database schema (and the secret key, if none is
    configured) right away; the store opens when the app starts."""
    settings = settings or Settings.from_env()
    secret = prepare_database(settings.database_url)
    if settings.secret_key is None:
        settings.secret_key = secret
    service = ApprovalService(open_store(settings.database_url), settings, clock=clock)
    webhooks = WebhookDispatcher(service)
    if webhooks.enabled:  # no listener, no event built per change, when no webhook is set
        service.add_listener(webhooks.on_event)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        await webhooks.start()
        try:
            yield
        finally:
            await webhooks.stop()
            await service.stop()

    app = FastAPI(
        title="FunctionLayer server",
        version=VERSION,
        description="The FunctionLayer open protocol: agents ask, humans approve. See docs/protocol.md.",
        lifespan=lifespan,
        # One schema per wire model (FunctionCall, not FunctionCall-Input/-Output).
        separate_input_output_schemas=False,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.webhooks = webhooks
    _document_bearer_auth(app)

    @app.exception_handler(ServerError)
    async def _server_error(request: Request, exc: ServerError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
        if isinstance(exc, QuotaExceededError):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(
            {"detail": exc.message, "code": exc.code}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for error in errors:
            if error.get("type") == "json_invalid":
                reason = (error.get("ctx") or {}).get("error", "invalid JSON")
                return JSONResponse(
                    {
                        "detail": f"malformed JSON in the request body: {reason}",
                        "code": "malformed_json",
                    },
                    status_code=400,
                )
            if tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes):
                # FastAPI hands over raw bytes when the Content-Type is not JSON.
                try:
                    json.loads(error["input"])
                except ValueError as bad:
                    return JSONResponse(
                        {
                            "detail": f"malformed JSON in the request body: {bad}",
                            "code": "malformed_json",
                        },
                        status_code=400,
                    )
                return JSONResponse(
                    {
                        "detail": "the request body must be JSON sent with Content-Type: application/json",
                        "code": "unsupported_media_type",
                    },
                    status_code=415,
                )
        problems = [
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in errors
        ]
        summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems[:5])
        return JSONResponse(
            {
                "detail": f"invalid request: {summary}",
                "code": "validation_error",
                "errors": problems,
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail), "code": _HTTP_CODES.get(exc.status_code, "error")},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "detail": "internal server error; the request may be retried",
                "code": "internal_error",
            },
            status_code=500,
        )

    api = install_api(app, settings)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "waiting": service.waiting}

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/inbox", status_code=303)  # people land in the inbox

    install_inbox(app)
    install_channels(app, service, settings)
    app.add_middleware(
        FastPathMiddleware, fastapi_app=app, api=api, prefixes=(API_PREFIX, LEGACY_PREFIX)
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)  # outermost
    return app


def _document_bearer_auth(app: FastAPI) -> None:
    """Declare the agent API's bearer token in /openapi.json (the check itself is in _api)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["bearerAuth"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token from `functionlayer-server tokens create`",
            }
            for path, operations in spec.get("paths", {}).items():
                if path.startswith(API_PREFIX):
                    for operation in operations.values():
                        operation.setdefault("security", [{"bearerAuth": []}])
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class FastPathMiddleware:
    """Serves the agent API's hot endpoints (create, get/long-poll, respond; marked with
    ``_api.fast_path``) by calling their FastAPI endpoint functions directly, skipping FastAPI's
    routing, dependency and middleware layers: about a third of the server's CPU per request.
    Same endpoint functions, same exception handlers, same responses; every other request
    goes through FastAPI as usual."""

    def __init__(
        self, app: ASGIApp, fastapi_app: FastAPI, api: APIRouter, prefixes: tuple[str, ...]
    ) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.prefixes = prefixes
        # The API's routes are in one router per resource: walk the included routers, each
        # route at its path within the API.
        self.routes: list[tuple[frozenset[str], re.Pattern[str], Any]] = []
        for path, route in _routes_with_paths(api.routes):
            if isinstance(route, APIRoute) and is_fast_path(route.endpoint):
                regex = compile_path(path)[0]
                self.routes.append((frozenset(route.methods or ()), regex, route.endpoint))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix in self.prefixes:
                if path.startswith(prefix):
                    rest, method = path[len(prefix) :], scope["method"]
                    for methods, regex, endpoint in self.routes:
                        if method in methods and (match := regex.match(rest)) is not None:
                            await self._serve(scope, receive, send, endpoint, match.groupdict())
                            return
                    break
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Any, params: dict[str, Any]
    ) -> None:
        scope["path_params"] = params
        scope["app"] = self.fastapi_app
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = await self._handle(request, exc)
        await response(scope, receive, send)

    async def _handle(self, request: Request, exc: Exception) -> Any:
        handlers = self.fastapi_app.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                response = handler(request, exc)
                return await response if inspect.isawaitable(response) else response
        raise exc


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException, so that body parsers re-raise it and the 413 handler answers."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body too large: the limit is {max_bytes} bytes")


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = (
            b'{"detail":"request body too large: the limit is '
            + str(self.max_bytes).encode()
            + b' bytes","code":"payload_too_large"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
