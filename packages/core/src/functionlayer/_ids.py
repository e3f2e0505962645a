"""Request ids and the same-request check every path that reads a decision applies."""

from __future__ import annotations

import os
from typing import Any

from functionlayer._errors import ConflictError
from functionlayer._models import FunctionCall, HumanContact

__all__ = ["check_same_contact", "check_same_request", "new_id"]


def new_id() -> str:
    """32 hex digits from the OS's random source (128 random bits: call and claim ids are
    not guessable). The same shape as ``uuid4().hex``, at a fifth of its cost."""
    return os.urandom(16).hex()


def check_same_request(sent: FunctionCall, got: FunctionCall) -> FunctionCall:
    """Refuse to act on a decision about a different call than the one we asked about."""
    if (
        got.call_id != sent.call_id
        or got.spec.fn != sent.spec.fn
        or not _same_arguments(got.spec.kwargs, sent.spec.kwargs)
    ):
        raise ConflictError(
            f"the backend holds a different request under call id {sent.call_id!r} "
            f"({got.spec.fn} {got.spec.kwargs!r}); refusing to use its decision"
        )
    return got


def _same_arguments(got: dict[str, Any], sent: dict[str, Any]) -> bool:
    """The same arguments on the wire. The common case (the server echoed what we sent, parsed
    into the same types) is decided by a walk over the values; anything else (a tuple that
    came back a list, a model that came back a dict) by comparing the wire's JSON."""
    return _identical(got, sent) or _json_of(got) == _json_of(sent)


def _identical(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (so ``True`` is not ``1``)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_identical(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return repr(a) == repr(b)  # -0.0 is not 0.0 on the wire
    if type(a) in (str, int, bool) or a is None:
        return bool(a == b)
    return False


def _json_of(kwargs: dict[str, Any]) -> str:
    """Arguments as the wire carries them: ``true``, ``1`` and ``1.0`` are different arguments
    (Python's ``==`` would call them equal and reuse another call's decision)."""
    import json

    from pydantic_core import to_jsonable_python

    return json.dumps(
        to_jsonable_python(kwargs, fallback=repr), sort_keys=True, separators=(",", ":")
    )


def check_same_contact(sent: HumanContact, got: HumanContact) -> HumanContact:
    if got.call_id != sent.call_id or got.spec.msg != sent.spec.msg:
        raise ConflictError(
            f"the backend holds a different contact request under call id {sent.call_id!r}"
        )
    return got
