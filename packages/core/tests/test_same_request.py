"""The same-request check: a decision is used only for the call it was made about, argument
for argument as the wire carries them (``True`` is not ``1``, ``1.0`` is not ``1``)."""

from __future__ import annotations

from typing import Any

import pytest
from functionlayer import ConflictError, FunctionCall
from functionlayer.adapters import check_same_request
from functionlayer.models import FunctionCallSpec


def _call(kwargs: dict[str, Any]) -> FunctionCall:
    return FunctionCall(run_id="r", call_id="c", spec=FunctionCallSpec(fn="f", kwargs=kwargs))


@pytest.mark.parametrize(
    ("sent", "got"),
    [
        ({"a": 1}, {"a": 1}),
        ({"a": [1, {"b": "x"}]}, {"a": [1, {"b": "x"}]}),
        ({"a": (1, 2)}, {"a": [1, 2]}),  # a tuple comes back a list: the same on the wire
        ({"a": None, "b": 2.5}, {"a": None, "b": 2.5}),
    ],
)
def test_the_same_arguments_are_the_same_request(sent: dict[str, Any], got: dict[str, Any]) -> None:
    assert check_same_request(_call(sent), _call(got)).spec.kwargs == got


@pytest.mark.parametrize(
    ("sent", "got"),
    [
        ({"a": True}, {"a": 1}),
        ({"a": 1}, {"a": 1.0}),
        ({"a": {"b": [True]}}, {"a": {"b": [1]}}),
        ({"a": 0.0}, {"a": -0.0}),
        ({"a": 1}, {"a": 1, "b": None}),
        ({"a": "1"}, {"a": 1}),
    ],
)
def test_different_arguments_are_refused(sent: dict[str, Any], got: dict[str, Any]) -> None:
    with pytest.raises(ConflictError, match="different request"):
        check_same_request(_call(sent), _call(got))
