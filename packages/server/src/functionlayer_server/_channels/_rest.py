"""JSON calls to a chat platform's REST API (Discord's, the Bot Framework connector), and the
path segments their URLs are built from."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["call_json", "path_segment", "required_id"]


def path_segment(value: str, platform: str) -> str:
    """One path segment of a REST URL (ids come from requests: never let them add segments)."""
    value = value.strip()
    if not value or value in (".", ".."):
        raise ValueError(f"not a {platform} id: {value!r}")
    return quote(value, safe="")


async def call_json(
    method: str,
    url: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    error: type[Exception],
) -> dict[str, Any]:
    """``method`` on ``url + path`` with a JSON ``body`` (15 s, redirects not followed): the
    answer's object, ``{}`` for an empty or non-object answer, or ``error`` on HTTP >= 400."""
    async with httpx.AsyncClient(timeout=15, follow_redirects=False) as client:
        response = await client.request(method, url + path, json=body, headers=headers)
    if response.status_code >= 400:
        raise error(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
    if not response.content:
        return {}
    data = response.json()
    return data if isinstance(data, dict) else {}


def required_id(answer: dict[str, Any], error: type[Exception], call: str, what: str) -> str:
    """The ``id`` of what ``call`` created (``answer``), or ``error``: nothing to record."""
    value = str(answer.get("id") or "")
    if not value:
        raise error(f"{call} returned no {what} id")
    return value
