"""What the FunctionLayer server's answers mean to ``HttpBackend``: a model, a failure to retry,
or a permanent error with the fix named (a wrong token, a base URL without the API path, ...).
The same for answers read by httpx and by the lean client (``_wire``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from functionlayer._errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    FunctionLayerError,
    MalformedResponseError,
    NotFoundError,
)
from functionlayer._models import FunctionCall, FunctionCallStatus, HumanContact, HumanContactStatus

__all__ = [
    "API_PATHS",
    "CLAIMING",
    "Answer",
    "Decided",
    "Retry",
    "RouteMissing",
    "api_path_hint",
    "call_path",
    "claiming_path",
    "contact_path",
    "creates",
    "execution_path",
    "expired_locally",
    "expiry",
    "interpret",
    "quoted",
    "without_claiming_wait",
]

M = TypeVar("M", bound=BaseModel)

#: The API paths of the protocol: a base URL ending otherwise is probably missing it.
API_PATHS = ("/functionlayer/v1", "/humanlayer/v1")


class Answer(Protocol):
    """An HTTP response as read by httpx or by the lean client."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class Retry:
    def __init__(self, error: FunctionLayerError, retry_after: float | None) -> None:
        self.error, self.retry_after = error, retry_after


def creates(method: str, path: str) -> bool:
    """Creating a request: something every agent token may do at a correct URL, so a 403 or a
    404 there is a setup mistake rather than an answer about one request."""
    return method == "POST" and path in ("/function_calls", "/contact_requests")


def interpret(
    model: type[M],
    response: Answer,
    base_url: str = "",
    creating: bool = False,
    path: str = "",
) -> M | Retry:
    """A parsed model, a transient failure to retry, or a raised permanent error."""
    status = response.status_code
    if status in (404, 405) and path.endswith(CLAIMING) and not is_service_error(response):
        raise RouteMissing(path)  # a server without the claiming wait, not a missing call
    if status == 429 or status >= 500:
        return Retry(
            BackendUnavailableError(
                f"the FunctionLayer server answered {status}: {detail(response)}"
            ),
            retry_after(response),
        )
    if status >= 400:
        message = f"the FunctionLayer server refused the request ({status}): {detail(response)}"
        if status == 404 and creating:
            raise ConfigurationError(
                message + api_path_hint(base_url, wrong_path=True), status_code=status
            )
        if status == 404:
            raise NotFoundError(message + api_path_hint(base_url), status_code=status)
        if status == 409:
            raise ConflictError(message, status_code=status)
        if status == 401:
            raise ConfigurationError(
                message
                + f" (check FUNCTIONLAYER_API_TOKEN: it must be a live token of {base_url})",
                status_code=status,
            )
        if status == 403 and creating:
            raise ConfigurationError(
                message + " (FUNCTIONLAYER_API_TOKEN must be an agent token: "
                "'functionlayer-server tokens create NAME', without --approver)",
                status_code=status,
            )
        raise BackendError(message, status_code=status)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise MalformedResponseError(
            f"the FunctionLayer server's answer ({status}) is not a valid {model.__name__}: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}; body starts {response.text[:120]!r}"
        ) from exc


CLAIMING = "/claim_when_approved"
# Servers (by base URL) that answered that they have no claiming wait: waited on in two steps.
without_claiming_wait: set[str] = set()


class RouteMissing(Exception):
    """The server has no such route (an older FunctionLayer server, or the predecessor's)."""


# What ``quote(..., safe="")`` leaves as it is: an id made of these needs no quoting (the ids
# the client makes itself are hex), which spares the hot path urllib's quoting.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")


def quoted(call_id: str) -> str:
    return call_id if _PLAIN.fullmatch(call_id) else quote(call_id, safe="")


def call_path(call_id: str) -> str:
    return f"/function_calls/{quoted(call_id)}"


def contact_path(call_id: str) -> str:
    return f"/contact_requests/{quoted(call_id)}"


def claiming_path(call_id: str) -> str:
    return call_path(call_id) + CLAIMING


def is_service_error(response: Answer) -> bool:
    """A FunctionLayer server's own refusal carries a machine ``code`` (for example
    ``not_found`` for an unknown call id); a framework's unknown-route 404 does not."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "code" in body


def execution_path(call_id: str) -> str:
    return call_path(call_id) + "/execution"


Decided = TypeVar("Decided", FunctionCall, HumanContact)


def expiry(model: type[Decided], call_id: str, reason: str) -> tuple[str, BaseModel]:
    """Where the agent says its request expired, and what it sends."""
    if model is FunctionCall:
        status: BaseModel = FunctionCallStatus(approved=False, comment=reason, expired=True)
        return f"/agent/function_calls/{quoted(call_id)}/respond", status
    return f"/agent/human_contacts/{quoted(call_id)}/respond", HumanContactStatus(expired=True)


def api_path_hint(base_url: str, *, wrong_path: bool = False) -> str:
    """A 404 from a base URL without the API path (or with a misspelt one): the mistake, named,
    with the URL it should be."""
    if not base_url or base_url.endswith(API_PATHS):
        return (
            f". Is {base_url} the URL of a FunctionLayer server? (FUNCTIONLAYER_API_BASE)"
            if wrong_path and base_url
            else ""
        )
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    misspelt = re.search(r"/[^/]+/v\d+$", path)  # e.g. /functionlayr/v1: replace, don't append
    if misspelt:
        fixed = urlunsplit(
            (parts.scheme, parts.netloc, path[: misspelt.start()] + API_PATHS[0], "", "")
        )
        return (
            f". The server base URL {base_url} ends with {misspelt.group(0)}, not the API path "
            f"{API_PATHS[0]}: FUNCTIONLAYER_API_BASE should be e.g. {fixed}"
        )
    return (
        f". The server base URL {base_url} does not end with the API path: "
        f"FUNCTIONLAYER_API_BASE should be e.g. {base_url}{API_PATHS[0]}"
    )


def detail(response: Answer) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:200]


def retry_after(response: Answer) -> float | None:
    value = response.headers.get("retry-after")  # both header maps match lower case
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def expired_locally(item: Decided, reason: str) -> Decided:
    if item.completed:
        return item
    if isinstance(item, FunctionCall):
        status = (item.status or FunctionCallStatus()).model_copy(
            update={"approved": False, "expired": True, "comment": reason}
        )
    else:
        status = (item.status or HumanContactStatus()).model_copy(update={"expired": True})
    return item.model_copy(update={"status": status})
