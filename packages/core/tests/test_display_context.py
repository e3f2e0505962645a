"""Numbers, the agent's context and the proposed/approved comparison, as every channel shows
them (core ``_display``)."""

from __future__ import annotations

import pytest
from functionlayer import FunctionLayer, RequestContext, request_context_scope
from functionlayer.display import (
    CONTEXT_LABEL,
    WARNING,
    compare_arguments,
    format_arguments,
    format_comparison,
    format_context,
    format_number,
)
from functionlayer.models import CONTEXT_FIELD_LIMIT
from functionlayer.testing import ScriptedHuman, approve

CENTS = {"properties": {"amount": {"type": "integer", "description": "Amount in cents"}}}


@pytest.mark.parametrize(
    ("value", "prop", "shown"),
    [
        (25000, None, "25,000"),
        (1500000, {"description": "Amount in cents"}, "1,500,000 cents (= 15,000.00)"),
        (-250, {"format": "cents"}, "-250 cents (= -2.50)"),
        (1234.5, None, "1,234.5"),
        (7, None, "7"),
        (True, None, "true"),
    ],
)
def test_numbers_are_formatted(value: float, prop: dict[str, str] | None, shown: str) -> None:
    assert format_number(value, prop) == shown


def test_arguments_show_formatted_numbers_with_the_schema_hint() -> None:
    text = format_arguments({"amount": 1500000, "count": 25000}, CENTS)
    assert text == "amount: 1,500,000 cents (= 15,000.00)\ncount: 25,000"


def test_context_is_labelled_quoted_and_marked() -> None:
    context = RequestContext(user_request="pay\u202eevil", reason="[click](http://x)\nsecond")
    text = format_context(context)
    lines = text.split("\n")
    assert lines[0] == CONTEXT_LABEL + ":"
    assert lines[1] == WARNING
    assert "> pay⟨U+202E⟩evil" in lines
    assert "> [click](http://x)" in lines and "> second" in lines
    assert format_context(None) == ""


def test_context_is_bounded() -> None:
    context = RequestContext.bounded(user_request="x" * (CONTEXT_FIELD_LIMIT + 50), reason=" ")
    assert context is not None
    assert context.user_request is not None and len(context.user_request) == CONTEXT_FIELD_LIMIT
    assert context.reason is None
    assert RequestContext.bounded(reason="  ") is None
    with pytest.raises(ValueError):
        RequestContext(reason="x" * (CONTEXT_FIELD_LIMIT + 1))


def test_comparison_marks_the_differences() -> None:
    rows = compare_arguments({"amount": 9000, "to": "bob"}, {"amount": 900, "to": "bob"})
    assert [(r.name, r.proposed, r.approved, r.changed) for r in rows] == [
        ("amount", "9,000", "900", True),
        ("to", "bob", "bob", False),
    ]
    assert format_comparison({"a": 1}, {"a": True}) == "a (changed): 1  →  true"


def test_guarded_call_carries_context_and_irreversible() -> None:
    human = ScriptedHuman([approve()])
    fl = FunctionLayer(backend=human, run_id="r")

    @fl.require_approval(irreversible=True)
    def wire(amount: int) -> str:
        """Irreversible."""
        return "sent"

    context = RequestContext(user_request="send 900", reason="the user asked")
    with request_context_scope(context):
        assert wire(900) == "sent"
    [request, *_] = human.function_call_requests
    assert request.spec.irreversible is True
    assert request.spec.context == context
