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
  :class:`CallIdFinder` (the model's tool call id from a framework's own frame).

Framework code stays in the adapter; everything about asking, waiting, expiry and what the
model hears stays here. See "Writing an adapter" in ``docs/architecture.md``.
"""

from __future__ import annotations

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
    "check_same_contact",
    "check_same_request",
    "claim",
    "claim_failed_message",
    "collect",
    "contact_failed_message",
    "current_call_id",
    "current_group_id",
    "current_request_context",
    "decide",
    "decision_of",
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
    "new_group_id",
    "new_id",
    "not_run_message",
    "reject_option_label",
    "rejection_message",
    "report",
    "request_context_scope",
    "request_for",
    "summarize",
    "tool_spec",
    "wait",
]
