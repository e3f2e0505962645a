"""What a request's page shows besides the request: a problem, a notice, the status it answers
with and the form as the person sent it; and what it says when an answer is not taken."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from .._errors import ServerError

__all__ = ["Shown", "already_answered", "not_accepted"]


class Shown(TypedDict, total=False):
    """A request page's extras (each one left out: none, status 200)."""

    error: str | None
    notice: str | None
    status_code: int
    form: Mapping[str, str] | None


def already_answered(exc: ServerError, done: str) -> Shown:
    """The page again, as the request is now: ``done`` ("decided", "answered") first."""
    return {
        "error": f"Nothing was changed: this request was already {done}. ({exc})",
        "status_code": 409,
    }


def not_accepted(exc: ServerError, form: Mapping[str, str]) -> Shown:
    """The page again with the form as sent, saying why (a client error's own status)."""
    code = exc.status_code if 400 <= exc.status_code < 500 else 422
    return {"error": f"Not accepted: {exc}", "status_code": code, "form": form}
