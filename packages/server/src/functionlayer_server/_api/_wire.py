"""The agent API's wire helpers: error documentation, response builders, and the hand-made
parsing of the hot endpoints (create, get/long-poll, respond), which skip FastAPI's parameter
and body machinery because it costs more CPU than the whole request otherwise. The OpenAPI
document still describes them (``openapi_extra``), and errors keep the same JSON shape."""

# No "from __future__ import annotations": FastAPI must resolve the local Annotated aliases.

import json
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from functionlayer_server._errors import InvalidRequestError
from functionlayer_server._store import RequestRecord

__all__ = [
    "ERRORS",
    "CallId",
    "ErrorBody",
    "call_id_of",
    "documented",
    "fast_path",
    "is_fast_path",
    "json_object",
    "model_response",
    "parse_body",
    "plain",
    "record_response",
    "run_id_filter",
    "wait_seconds",
]


class ErrorBody(BaseModel):
    detail: str
    code: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed JSON",
        401: "Missing, wrong or revoked API token",
        403: "This token may not do that (agent tokens cannot decide; a person the policy "
        "does not allow)",
        404: "No such request for this token's project",
        409: "Conflict: already decided or expired, another request under this call id, or "
        "an execution claim on a call that is not approved",
        413: "Request body over the server's limit",
        429: "Over a quota of this token (pending requests, open long-polls): nothing was "
        "stored; retry after Retry-After seconds",
        422: "Wrong types, an invalid decision, or routing outside the operator's rules",
    }.items()
}

CallId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The request's call id",
    ),
]


def model_response(model: BaseModel) -> Response:
    return Response(content=model.model_dump_json(), media_type="application/json")


def record_response(record: RequestRecord) -> Response:
    """A stored request as the protocol's JSON, straight from its stored text (no model round
    trip on the hot paths)."""
    return Response(content=record.to_json(), media_type="application/json")


def plain(data: Any) -> Response:
    return Response(content=json.dumps(data), media_type="application/json")


M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Awaitable[Response]])


def fast_path(endpoint: F) -> F:
    """Mark an endpoint that takes only the request: ``_app.FastPathMiddleware`` calls it
    directly, bypassing FastAPI's routing and dependency layers."""
    endpoint._fl_fast_path = True  # type: ignore[attr-defined]
    return endpoint


def is_fast_path(endpoint: Any) -> bool:
    return bool(getattr(endpoint, "_fl_fast_path", False))


_CALL_ID_PARAM = {
    "name": "call_id",
    "in": "path",
    "required": True,
    "description": "The request's call id",
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
}
_WAIT_PARAM = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Long-poll: hold the request up to this many seconds (capped at 60) until "
    "the request is decided",
    "schema": {"type": "number", "minimum": 0},
}


def documented(
    *, call_id: bool = False, wait: bool = False, body: str | None = None
) -> dict[str, Any]:
    """``openapi_extra`` of a hand-parsed endpoint: the parameters it reads (the path's
    ``call_id``, the ``wait`` query) and its JSON ``body`` (a schema of the document's
    components)."""
    extra: dict[str, Any] = {}
    parameters = [doc for doc, read in ((_CALL_ID_PARAM, call_id), (_WAIT_PARAM, wait)) if read]
    if parameters:
        extra["parameters"] = parameters
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return extra


def _invalid(loc: tuple[str, ...], msg: str, kind: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": kind, "input": value}])


async def parse_body(request: Request, model: type[M], *, strict: bool = False) -> M:
    raw = await request.body()
    try:
        return model.model_validate_json(raw, strict=strict or None)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(errors) from None


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidRequestError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return body


def call_id_of(request: Request) -> str:
    call_id = str(request.path_params["call_id"])
    if not 1 <= len(call_id) <= 256 or not call_id.isprintable():
        raise _invalid(
            ("path", "call_id"),
            "call_id must be 1-256 printable characters",
            "string_pattern_mismatch",
            call_id,
        )
    return call_id


def run_id_filter(run_id: str | None) -> str | None:
    if run_id is not None and not (0 < len(run_id) <= 256 and run_id.isprintable()):
        raise _invalid(
            ("query", "run_id"),
            "run_id must be 1-256 printable characters",
            "string_pattern_mismatch",
            run_id,
        )
    return run_id


def wait_seconds(request: Request, cap: float) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(
            ("query", "wait"), "Input should be a valid number", "float_parsing", raw
        ) from None
    if not math.isfinite(value) or value < 0:
        raise _invalid(
            ("query", "wait"), "wait must be a finite number >= 0", "greater_than_equal", raw
        )
    return min(value, cap)
