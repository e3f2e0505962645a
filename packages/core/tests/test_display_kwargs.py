"""A person approves what they read: with a JSON schema, arguments the schema does not list
(a function taking ``**kwargs``) are shown too, in every display a person reads."""

from __future__ import annotations

import io

from functionlayer import FunctionCall, FunctionCallSpec, TerminalBackend
from functionlayer._display import display_arguments, format_arguments

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}
KWARGS = {"a": 1, "extra": "send-to-attacker"}


def test_arguments_outside_the_schema_are_shown() -> None:
    assert [item.name for item in display_arguments(KWARGS, SCHEMA)] == ["a", "extra"]
    assert "send-to-attacker" in format_arguments(KWARGS, SCHEMA)


def test_the_terminal_shows_arguments_outside_the_schema() -> None:
    shown = io.StringIO()
    backend = TerminalBackend(input=io.StringIO("no, not that\n"), output=shown)
    call = FunctionCall(
        run_id="r",
        call_id="kw-1",
        spec=FunctionCallSpec(fn="transfer", kwargs=KWARGS, parameters=SCHEMA),
    )
    decided = backend.create_function_call(call)
    assert decided.status is not None and decided.status.approved is False
    assert "extra" in shown.getvalue() and "send-to-attacker" in shown.getvalue()
