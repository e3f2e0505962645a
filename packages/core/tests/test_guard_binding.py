"""The arguments a guarded call shows the human are the call's arguments by name, defaults
applied, in the signature's order, exactly as ``inspect.Signature.bind`` gives them; a call
that does not fit the signature raises Python's ``TypeError`` before anything is asked."""

from __future__ import annotations

import inspect
import typing

import pytest
from functionlayer import FunctionLayer
from functionlayer.testing import ScriptedHuman, approve


def plain(a: int, b: str = "b", c: list[int] | None = None) -> str:
    return f"{a}{b}{c}"


def keyword_only(a: int, *, b: int = 2) -> int:
    return a + b


def positional_only(a: int, /, b: int = 2) -> int:
    return a + b


def var_keyword(a: int, **extra: int) -> int:
    return a + sum(extra.values())


def expected(
    fn: typing.Callable[..., typing.Any],
    args: tuple[typing.Any, ...],
    kwargs: dict[str, typing.Any],
) -> dict[str, typing.Any]:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    shown: dict[str, typing.Any] = {}
    for name, value in bound.arguments.items():
        if inspect.signature(fn).parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            shown.update(value)
        else:
            shown[name] = value
    return shown


def guarded_with(
    fn: typing.Callable[..., typing.Any],
) -> tuple[typing.Callable[..., typing.Any], ScriptedHuman]:
    human = ScriptedHuman([approve()])
    return FunctionLayer(backend=human, run_id="run").require_approval()(fn), human


Call = tuple[typing.Callable[..., typing.Any], tuple[typing.Any, ...], dict[str, typing.Any]]

CALLS: list[Call] = [
    (plain, (1,), {}),
    (plain, (1, "x"), {}),
    (plain, (1, "x", [3]), {}),
    (plain, (), {"a": 1}),
    (plain, (1,), {"c": [4], "b": "y"}),
    (plain, (), {"c": None, "a": 2}),
    (keyword_only, (1,), {}),
    (keyword_only, (1,), {"b": 5}),
    (positional_only, (1,), {"b": 5}),
    (var_keyword, (1,), {"z": 3, "y": 2}),
]


@pytest.mark.parametrize("call", CALLS)
def test_the_human_sees_the_arguments_as_inspect_binds_them(call: Call) -> None:
    fn, args, kwargs = call
    guarded, human = guarded_with(fn)

    assert guarded(*args, **kwargs) == fn(*args, **kwargs)
    [request] = human.function_call_requests
    shown = request.spec.kwargs
    assert shown == expected(fn, args, kwargs)
    assert list(shown) == list(expected(fn, args, kwargs))  # the signature's order


MALFORMED: list[Call] = [
    (plain, (), {}),  # missing a
    (plain, (1, "x", [3], 4), {}),  # too many
    (plain, (1,), {"a": 2}),  # a twice
    (plain, (1,), {"d": 2}),  # unknown
    (keyword_only, (1, 2), {}),  # b is keyword-only
    (positional_only, (), {"a": 1}),  # a is positional-only
]


@pytest.mark.parametrize("call", MALFORMED)
def test_a_call_that_does_not_fit_the_signature_raises_before_asking(call: Call) -> None:
    fn, args, kwargs = call
    guarded, human = guarded_with(fn)

    with pytest.raises(TypeError) as raised:
        guarded(*args, **kwargs)
    with pytest.raises(TypeError) as direct:
        inspect.signature(fn).bind(*args, **kwargs)
    assert str(raised.value) == str(direct.value)
    assert human.function_call_requests == []
