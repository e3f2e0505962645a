"""A submitted inbox form, read as the decision it asks for: the same ``FunctionCallStatus``
every channel hands to the service (a picked option without text is filled by the policy,
``_policy.apply_decision``, as in every channel); or what is wrong with it, for the page."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from functionlayer.models import FunctionCall, FunctionCallStatus

from .. import _schema
from ._arguments import FIELD_PREFIX, edit_fields, edits_from_form

__all__ = ["MAX_TEXT", "decision_from_form", "form_text", "form_values"]

MAX_TEXT = 20_000  # characters of feedback / answer / edited JSON accepted from a form


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The submitted fields to show again on the page (the CSRF token aside)."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def decision_from_form(
    call: FunctionCall, form: Mapping[str, Any]
) -> tuple[FunctionCallStatus | None, str | None, dict[str, str]]:
    """The decision a submitted form asks for, or an error message for the page (and, for
    an invalid edit, what is wrong with each argument, shown next to its field)."""
    decision, problem = _decision(call, form)
    if decision is None or decision.edited_kwargs is None:
        return decision, problem, {}
    merged = _schema.merge_edits(call.spec, decision.edited_kwargs)
    problems = await _schema.edit_problems_off_loop(call.spec, merged)
    if problems:
        return None, "Nothing was recorded: " + _schema.describe(problems) + ".", problems
    return decision, problem, {}


def _decision(
    call: FunctionCall, form: Mapping[str, Any]
) -> tuple[FunctionCallStatus | None, str | None]:
    action = form_text(form, "action")
    if action and action in _schema.DECISION_KINDS and action not in _schema.allowed(call.spec):
        return None, f"{call.spec.fn} does not accept the decision {action!r}."
    too_long = [k for k, v in form.items() if isinstance(v, str) and len(v) > MAX_TEXT]
    for name in too_long:
        if name.startswith(FIELD_PREFIX):
            return None, f"The argument {name[len(FIELD_PREFIX) :]!r} is too long."
    for name in ("feedback", "response", "edited_kwargs", "comment"):
        if len(form_text(form, name)) > MAX_TEXT:
            return (
                None,
                f"The {name.replace('_', ' ')} is too long (over {MAX_TEXT} characters).",
            )
    confirmed = form_text(form, "confirmed_irreversible") in ("1", "true", "yes")
    if action == "approve":
        return FunctionCallStatus(
            approved=True,
            comment=form_text(form, "comment") or None,
            confirmed_irreversible=confirmed or None,
        ), None
    if action == "reject":
        feedback = form_text(form, "feedback")
        option_name = form_text(form, "reject_option_name") or None
        options = {o.name: o for o in call.spec.reject_options or []}
        if option_name is not None and option_name not in options:
            return None, "That reject option does not exist for this request."
        if not feedback and option_name is None:
            return None, "Write the feedback for the agent: it is required to reject."
        # A picked option without text is filled by the policy, as in every channel.
        return (
            FunctionCallStatus(
                approved=False, comment=feedback or None, reject_option_name=option_name
            ),
            None,
        )
    if action == "edit" and edit_fields(call.spec.kwargs, call.spec.parameters):
        edits, problems = edits_from_form(call.spec.kwargs, call.spec.parameters, form)
        if problems:
            return None, "Nothing was recorded: " + _schema.describe(problems) + "."
        merged = _schema.merge_edits(call.spec, edits)
        if merged == call.spec.kwargs:
            return FunctionCallStatus(approved=True, confirmed_irreversible=confirmed or None), None
        return FunctionCallStatus(
            approved=True, edited_kwargs=merged, confirmed_irreversible=confirmed or None
        ), None
    if action == "edit":
        return _raw_edit(call, form, confirmed)
    if action == "respond":
        text = form_text(form, "response")
        if not text:
            return None, "Write the answer the agent should receive instead."
        return FunctionCallStatus(approved=False, response=text), None
    return None, "Unknown action."


def _raw_edit(
    call: FunctionCall, form: Mapping[str, Any], confirmed: bool
) -> tuple[FunctionCallStatus | None, str | None]:
    """An edit as raw JSON (a request without a schema for typed fields)."""
    raw = form_text(form, "edited_kwargs")
    try:
        edited = json.loads(raw)
    except ValueError as exc:
        return None, f"The edited arguments are not valid JSON: {exc}."
    if not isinstance(edited, dict):
        return None, (
            'The edited arguments must be a JSON object of argument names to values, like {"x": 1}.'
        )
    comment = form_text(form, "comment") or None
    if edited == call.spec.kwargs:
        # Nothing changed: a plain approval, so the agent is not told of phantom edits.
        return FunctionCallStatus(
            approved=True, comment=comment, confirmed_irreversible=confirmed or None
        ), None
    return (
        FunctionCallStatus(
            approved=True,
            edited_kwargs=edited,
            comment=comment,
            confirmed_irreversible=confirmed or None,
        ),
        None,
    )
