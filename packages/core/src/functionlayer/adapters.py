"""What an adapter needs from the core: the seam every ``functionlayer-<framework>`` package
builds on (and the one an outside adapter should use: the core's ``_`` modules may change).

- **Native tools** (the framework calls a guarded function): :func:`tool_spec` describes a
  function as an LLM tool (:class:`ToolSpec`: name, description, argument model and JSON
  schema, ``run``/``arun`` under the model's tool call id); :func:`args_model_for`.
- **Scopes** an adapter opens around a call: :func:`call_id_scope` (the model's tool call id is
  the approval's call id), :func:`group_scope` / :func:`group_id_for` (a model turn's calls are
  one review group), :func:`request_context_scope` (what the agent says about the call), and
  the ``current_*`` readers.
- **Native pauses** (the framework stops at a call needing approval and resumes with approve or
  deny): :class:`PendingToolCall` in, :class:`NativeDecision` out, through :func:`ask`,
  :func:`check`, :func:`wait`, :func:`collect`, :func:`decide` (async twins ``a…``,
  :func:`await_decisions`). **One approval, one execution**: :func:`claim` just before the
  framework runs an approved call (:class:`Claim`; not granted means "already ran"),
  :func:`report` how it ended, :func:`go_ahead` claims a turn's approvals.
- **What the model is told**: the ``*_message`` functions (every LLM-facing string, once).
- **Helpers**: :func:`summarize` (the recorded outcome), :func:`new_id`,
  :func:`check_same_request` (refuse a decision about another call than the one asked about),
  :class:`CallIdFinder` (the model's tool call id from a framework's own frame),
  :func:`dump_pause` / :func:`load_pause` (a saved native pause as JSON),
  :func:`run_to_completion` (a coroutine from synchronous framework code),
  :func:`check_plain_function` (what ``tool(fn)`` accepts), :func:`checked_timeout` (an
  adapter's ``timeout=`` option), :class:`OnceWarning` (a warning given once per process).

Framework code stays in the adapter; everything about asking, waiting, expiry and what the
model hears stays here. See "Writing an adapter" in ``docs/architecture.md``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import warnings
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from functionlayer._context import (
    call_id_scope,
    current_call_id,
    current_group_id,
    current_request_context,
    group_id_for,
    group_scope,
    new_group_id,
    request_context_scope,
)
from functionlayer._execution import MAX_SUMMARY, Redactor, summarize
from functionlayer._feedback import (
    already_ran_message,
    claim_failed_message,
    contact_failed_message,
    edited_message,
    expired_message,
    invalid_arguments_message,
    invalid_edit_message,
    not_run_message,
    reject_option_label,
    rejection_message,
)
from functionlayer._frames import CallIdFinder, installed_version
from functionlayer._ids import check_same_contact, check_same_request, new_id
from functionlayer._interrupt import exit_after
from functionlayer._interrupt import install as install_interrupt_handler
from functionlayer._models import FunctionCall
from functionlayer._native import (
    aask,
    acheck,
    acollect,
    adecide,
    ask,
    await_decisions,
    check,
    collect,
    decide,
    wait,
)
from functionlayer._native_decisions import (
    Claim,
    NativeDecision,
    PendingToolCall,
    aclaim,
    ago_ahead,
    areport,
    claim,
    decision_of,
    edits_unsupported_message,
    go_ahead,
    report,
    request_for,
)
from functionlayer._tools import ToolSpec, args_model_for, tool_spec

__all__ = [
    "MAX_SUMMARY",
    "CallIdFinder",
    "Claim",
    "NativeDecision",
    "OnceWarning",
    "PendingToolCall",
    "Redactor",
    "ToolSpec",
    "aask",
    "acheck",
    "aclaim",
    "acollect",
    "adecide",
    "ago_ahead",
    "already_ran_message",
    "areport",
    "args_model_for",
    "ask",
    "await_decisions",
    "call_id_scope",
    "check",
    "check_plain_function",
    "check_same_contact",
    "check_same_request",
    "checked_timeout",
    "claim",
    "claim_failed_message",
    "collect",
    "contact_failed_message",
    "current_call_id",
    "current_group_id",
    "current_request_context",
    "decide",
    "decision_of",
    "dump_pause",
    "edited_message",
    "edits_unsupported_message",
    "exit_after",
    "expired_message",
    "go_ahead",
    "group_id_for",
    "group_scope",
    "install_interrupt_handler",
    "installed_version",
    "invalid_arguments_message",
    "invalid_edit_message",
    "load_pause",
    "new_group_id",
    "new_id",
    "not_run_message",
    "reject_option_label",
    "rejection_message",
    "report",
    "request_context_scope",
    "request_for",
    "run_to_completion",
    "summarize",
    "tool_spec",
    "wait",
]

_T = TypeVar("_T")


def dump_pause(format: str, fields: Mapping[str, Any], requests: Sequence[FunctionCall]) -> str:
    """A saved native pause as JSON: its ``format`` tag, the framework's own ``fields`` (the
    state to resume from) and the FunctionLayer requests as sent."""
    sent = [request.model_dump(mode="json") for request in requests]
    return json.dumps({"format": format, **fields, "requests": sent})


def load_pause(
    data: str | bytes, format: str, framework: str
) -> tuple[dict[str, Any], tuple[FunctionCall, ...]]:
    """The fields and the requests of a pause :func:`dump_pause` saved; ``ValueError`` when
    ``data`` is not a saved ``framework`` pause of this ``format``."""
    loaded = json.loads(data)
    if not isinstance(loaded, dict) or loaded.get("format") != format:
        raise ValueError(f"not a saved {framework} pause ({format})")
    requests = tuple(FunctionCall.model_validate(r) for r in loaded.get("requests") or [])
    return loaded, requests


def run_to_completion(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from synchronous framework code, whether or not a loop runs in this
    thread (then on a thread and loop of its own, with this context)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # asyncio.run cannot nest in a running loop: give the coroutine a thread and loop of its own.
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()


def check_plain_function(fn: Any, native: type, framework: str) -> None:
    """What an adapter's ``tool(fn)`` accepts: a function, not already a ``native`` tool of the
    ``framework`` (``TypeError`` saying which)."""
    if isinstance(fn, native):
        name = getattr(fn, "name", None) or getattr(getattr(fn, "metadata", None), "name", None)
        raise TypeError(f"{name!r} is already a {framework} tool; pass the plain function")
    if not callable(fn):
        raise TypeError(f"tool() needs a function, got {type(fn).__name__}")


def checked_timeout(timeout: float | None) -> float | None:
    """An adapter's ``timeout=`` option: ``None`` (the client's) or a positive number of
    seconds; ``ValueError`` otherwise."""
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    return timeout


class OnceWarning:
    """A warning an adapter gives once per process (``warned`` says whether it was given)."""

    def __init__(self, category: type[Warning]) -> None:
        self.category = category
        self.warned = False
        self._lock = threading.Lock()

    def call_id_missing(
        self, package: str, reason: str, versions: str, *, stacklevel: int = 1
    ) -> None:
        """Warn that ``package`` cannot find the model's tool call id (why: ``reason``), asking
        for a report naming ``versions``. ``stacklevel`` counts from the caller (1: itself)."""
        self.warn(
            f"{package} cannot find the model's tool call id ({reason}). Approvals still work, "
            "but each call gets a fresh call id, so a retried turn asks the human again and "
            "several calls of one turn cannot be matched to the model's ids. Please report this "
            f"with your {versions}.",
            stacklevel=stacklevel + 1,
        )

    def warn(self, message: str, *, stacklevel: int = 1) -> None:
        """Warn with ``message`` unless this warning was given already; ``stacklevel`` counts
        from the caller (1: the caller itself)."""
        with self._lock:
            first, self.warned = not self.warned, True
        if first:
            warnings.warn(message, self.category, stacklevel=stacklevel + 1)
