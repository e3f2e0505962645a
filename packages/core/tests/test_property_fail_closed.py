"""Property: across random answers and faults, the body runs only on approval, with exactly the
approved arguments, and every other outcome returns a message instead."""

from __future__ import annotations

from typing import Any

from functionlayer import FunctionLayer, HttpBackend
from functionlayer.testing import Answer, ScriptedHuman, approve, edit, fail, never, reject, respond
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packages.core.tests.protocol_server import Fault, ProtocolServer

ints = st.integers(min_value=-1000, max_value=1000)
edit_values = st.one_of(ints, st.sampled_from(["abc", 2.5, None, [1]]))
answers = st.one_of(
    st.builds(lambda: approve()),
    st.builds(reject, st.text(max_size=20)),
    st.builds(lambda x, y: edit(x=x, y=y), edit_values, edit_values),
    st.builds(respond, st.text(min_size=1, max_size=20)),
    st.builds(lambda: never()),
    st.builds(lambda: fail()),
)
calls = st.lists(st.tuples(ints, ints, answers), min_size=1, max_size=8)
# Over HTTP the faults come from the server instead of the script.
http_calls = st.lists(
    st.tuples(ints, ints, answers.filter(lambda answer: answer.kind != "fail")),
    min_size=1,
    max_size=6,
)


def expected_run(x: int, y: int, answer: Answer) -> tuple[int, int] | None:
    if answer.kind == "approve":
        return (x, y)
    if answer.kind == "edit":
        assert answer.edited_kwargs is not None
        ex, ey = answer.edited_kwargs["x"], answer.edited_kwargs["y"]
        if isinstance(ex, int) and isinstance(ey, int):
            return (ex, ey)
    return None


def check(fl: FunctionLayer, script: list[tuple[int, int, Answer]]) -> None:
    ran: list[tuple[int, int]] = []

    @fl.require_approval()
    def multiply(x: int, y: int) -> int:
        ran.append((x, y))
        return x * y

    expected: list[tuple[int, int]] = []
    for x, y, answer in script:
        before = len(ran)
        result: Any = multiply(x, y)
        want = expected_run(x, y, answer)
        if want is None:
            assert len(ran) == before, f"{answer} ran the body"
            assert isinstance(result, str)
        else:
            expected.append(want)
            assert ran[-1] == want
            if answer.kind == "approve":
                assert result == x * y
            elif want != (x, y):
                assert isinstance(result, str) and result.endswith(f"returned: {want[0] * want[1]}")
    assert ran == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
def test_in_memory_body_runs_only_on_approval(script: list[tuple[int, int, Answer]]) -> None:
    human = ScriptedHuman([answer for _, _, answer in script])
    check(FunctionLayer(backend=human, timeout=0.01), script)


faults = st.sampled_from(
    [
        None,
        Fault(status=500),
        Fault(status=503),
        Fault(drop_connection=True),
        Fault(drop_connection=True, after_processing=True),
    ]
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(http_calls, st.lists(faults, min_size=8, max_size=8), st.booleans())
def test_over_http_body_runs_only_on_approval(
    script: list[tuple[int, int, Answer]], injected: list[Fault | None], malformed_reply: bool
) -> None:
    human = ScriptedHuman([answer for _, _, answer in script])
    with ProtocolServer(store=human) as server:
        for fault in injected:
            if fault is not None:
                server.inject("POST", fault)
        if malformed_reply:
            server.inject("GET", Fault(body=b'{"status": "approved"}', after_processing=True))
        backend = HttpBackend(
            server.base_url, server.token, retry_for=3, backoff_initial=0.01, backoff_max=0.05
        )
        fl = FunctionLayer(backend=backend, timeout=0.1)
        ran: list[tuple[int, int]] = []

        @fl.require_approval()
        def multiply(x: int, y: int) -> int:
            ran.append((x, y))
            return x * y

        for x, y, answer in script:
            before = len(ran)
            result = multiply(x, y)
            want = expected_run(x, y, answer)
            if len(ran) > before:
                # It ran: that must have been an approval of exactly these arguments.
                assert want is not None and ran[-1] == want
            else:
                assert isinstance(result, str)
                # Retried faults alone never turn an approval into a refusal; a malformed reply may.
                assert want is None or malformed_reply, result
