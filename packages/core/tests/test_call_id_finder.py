"""The model's tool call id read from a framework's own frame (CrewAI and ControlFlow use it)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from functionlayer.adapters import CallIdFinder


class MissingIdWarning(UserWarning):
    pass


def framework_runs(tool: Callable[[], str | None], call_id: Any) -> str | None:
    """Stands for the framework function that holds the model's id (its local ``call_id``)
    while the tool runs."""
    return tool()


def finder(codes: frozenset[Any] | None = None) -> CallIdFinder:
    return CallIdFinder(
        frozenset({framework_runs.__code__}) if codes is None else codes,
        lambda local: local.get("call_id"),
        warning=MissingIdWarning,
        message="no id under Framework {version}",
        distribution="pytest",
    )


def test_the_id_is_read_from_the_framework_frame_however_deep_the_tool_is() -> None:
    ids = finder()

    def tool() -> str | None:
        return (lambda: ids.find(2))()

    assert framework_runs(tool, "call_abc") == "call_abc"


def test_no_framework_frame_or_no_usable_id_is_none() -> None:
    ids = finder()
    assert ids.find() is None  # called outside the framework
    assert framework_runs(ids.find, "") is None  # an empty id is no id
    assert framework_runs(ids.find, 42) is None  # neither is anything but a string


def test_a_missing_id_warns_once_per_finder_with_the_installed_version() -> None:
    import pytest

    ids = finder(frozenset())  # a framework release whose function this adapter does not know
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert framework_runs(ids.find_or_warn, "call_1") is None
        assert framework_runs(ids.find_or_warn, "call_2") is None
    messages = [str(w.message) for w in caught if issubclass(w.category, MissingIdWarning)]
    assert messages == [f"no id under Framework {pytest.__version__}"]
    assert ids.warned


def test_a_found_id_does_not_warn() -> None:
    ids = finder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert framework_runs(lambda: ids.find_or_warn(2), "call_ok") == "call_ok"
    assert not ids.warned
