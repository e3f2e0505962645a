"""The conformance suite every FunctionLayer adapter passes (in the spirit of LangChain's
standard tests), for this repository's adapters and for anyone writing their own.

An adapter's test module subclasses :class:`AdapterConformance` (the class name must start
with ``Test`` there, so pytest collects it) and implements a small harness: build the native
tool from a function, invoke it the way the framework's agent loop would (with the model's
tool call id), sync and async, and read the tool's name, description and argument schema.
Every case below then runs against that adapter. The cases use ``ScriptedHuman``, so they
are fast and offline; each adapter's real agent loop is covered by its end-to-end tests.

Outside this repository (needs pytest; importing :mod:`functionlayer` never imports it)::

    # conftest.py: readable assertion failures from the suite's cases
    import pytest

    pytest.register_assert_rewrite("functionlayer.testing.conformance")

    # test_my_adapter.py
    from functionlayer.testing.conformance import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        def make_tool(self, fn): return my_adapter.tool(fn)
        def invoke(self, tool, arguments, call_id): return str(tool.call(arguments, id=call_id))
        def tool_name(self, tool): return tool.name
        def tool_description(self, tool): return tool.description
        def tool_parameters(self, tool): return tool.json_schema

Set ``supports_async = False`` (no async path) or ``passes_call_id = False`` (the framework
cannot expose the model's tool call id: say why) to skip those cases; override ``ainvoke`` and
``invoke_turn`` where the framework has an async path or runs a turn's calls itself.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from functionlayer import FunctionLayer, MalformedResponseError
from functionlayer.adapters import edited_message, rejection_message
from functionlayer.testing import Answer, ScriptedHuman, approve, edit, fail, never, reject, respond

__all__ = ["AdapterConformance", "ToolCall"]


@dataclass(frozen=True)
class ToolCall:
    """One call the model makes in a turn: which tool, its arguments, and its tool call id."""

    tool: Any
    arguments: dict[str, Any]
    call_id: str


@dataclass
class _Math:
    """Guarded and plain test functions recording every time their body runs."""

    fl: FunctionLayer
    human: ScriptedHuman
    ran: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, **kwargs: Any) -> None:
        with self.lock:
            self.ran.append((name, kwargs))


def _make(answers: Any, *, timeout: float | None = None) -> _Math:
    human = ScriptedHuman(answers)
    fl = FunctionLayer(backend=human, run_id="conformance", timeout=timeout)
    return _Math(fl=fl, human=human)


def _guarded_multiply(math: _Math) -> Callable[..., Any]:
    @math.fl.require_approval()
    def multiply(x: int, y: int) -> int:
        """Multiply two integers and return the product."""
        math.record("multiply", x=x, y=y)
        return x * y

    return multiply


def _guarded_async_multiply(math: _Math) -> Callable[..., Any]:
    @math.fl.require_approval()
    async def multiply(x: int, y: int) -> int:
        """Multiply two integers and return the product."""
        await asyncio.sleep(0)
        math.record("multiply", x=x, y=y)
        return x * y

    return multiply


class AdapterConformance(ABC):
    """Subclass as ``class TestMyAdapter(AdapterConformance)`` and implement the harness."""

    #: Whether the adapter carries the model's tool call id into the approval (set False only
    #: with a reason the framework cannot expose it; the call-id cases are then skipped).
    passes_call_id: ClassVar[bool] = True
    #: Whether the framework has an async invocation path.
    supports_async: ClassVar[bool] = True

    # -- harness -------------------------------------------------------------------------------
    @abstractmethod
    def make_tool(self, fn: Callable[..., Any]) -> Any:
        """The adapter's native tool for ``fn`` (e.g. ``functionlayer_langchain.tool(fn)``)."""

    @abstractmethod
    def invoke(self, tool: Any, arguments: dict[str, Any], call_id: str) -> str:
        """Run ``tool`` as the framework's loop would for a model tool call with ``call_id``;
        return the tool result the model would see, as a string."""

    async def ainvoke(self, tool: Any, arguments: dict[str, Any], call_id: str) -> str:
        """The async path; override when the framework has one."""
        raise NotImplementedError

    def invoke_turn(self, calls: Sequence[ToolCall]) -> dict[str, str]:
        """Run several tool calls of one model turn; results keyed by call id.

        The default invokes them one by one; override where the framework runs a turn itself.
        """
        return {
            call.call_id: self.invoke(call.tool, call.arguments, call.call_id) for call in calls
        }

    @abstractmethod
    def tool_name(self, tool: Any) -> str: ...

    @abstractmethod
    def tool_description(self, tool: Any) -> str: ...

    @abstractmethod
    def tool_parameters(self, tool: Any) -> dict[str, Any]:
        """The JSON schema of the arguments object the model is shown."""

    # -- helpers -------------------------------------------------------------------------------
    def _call_id_check(self) -> None:
        if not self.passes_call_id:
            pytest.skip(f"{type(self).__name__}: the framework does not expose tool call ids")

    def _async_check(self) -> None:
        if not self.supports_async:
            pytest.skip(f"{type(self).__name__}: the framework has no async tool path")

    def _run(
        self, answers: Any, arguments: dict[str, Any], call_id: str = "call_1", **kw: Any
    ) -> tuple[_Math, str]:
        math = _make(answers, **kw)
        tool = self.make_tool(_guarded_multiply(math))
        return math, self.invoke(tool, arguments, call_id)

    # -- cases ---------------------------------------------------------------------------------
    def test_approve_runs_once_and_returns_result(self) -> None:
        math, result = self._run([approve()], {"x": 2, "y": 5})
        assert math.ran == [("multiply", {"x": 2, "y": 5})]
        assert result.strip() == "10"
        [request] = math.human.function_call_requests
        assert request.spec.fn == "multiply"
        assert request.spec.kwargs == {"x": 2, "y": 5}

    def test_model_call_id_becomes_approval_call_id(self) -> None:
        self._call_id_check()
        # The human only answers this exact id: any other id fails closed and nothing runs.
        math, result = self._run({"call_abc123": approve()}, {"x": 2, "y": 5}, "call_abc123")
        assert [r.call_id for r in math.human.function_call_requests] == ["call_abc123"]
        assert result.strip() == "10"

    def test_reject_with_feedback_never_runs(self) -> None:
        math, result = self._run([reject("use smaller numbers")], {"x": 2, "y": 5})
        assert math.ran == []
        assert result == rejection_message("multiply", "use smaller numbers")

    def test_approve_with_edits_runs_with_edited_arguments(self) -> None:
        math, result = self._run([edit(x=3, y=5)], {"x": 2, "y": 5})
        assert math.ran == [("multiply", {"x": 3, "y": 5})]
        assert result == edited_message("multiply", {"x": 2, "y": 5}, {"x": 3, "y": 5}, 15)

    def test_invalid_edit_fails_closed(self) -> None:
        math, result = self._run([edit(x="not a number", y=5)], {"x": 2, "y": 5})
        assert math.ran == []
        assert result.startswith("multiply was not run:")

    def test_respond_instead_is_the_tool_result(self) -> None:
        math, result = self._run(
            [respond("The answer is 12, no need to compute.")], {"x": 2, "y": 5}
        )
        assert math.ran == []
        assert result == "The answer is 12, no need to compute."

    @pytest.mark.parametrize(
        "answer",
        [fail(), fail(MalformedResponseError("garbled answer")), never()],
        ids=["unreachable", "malformed-answer", "never-answers"],
    )
    def test_no_decision_fails_closed(self, answer: Answer) -> None:
        math, result = self._run([answer], {"x": 2, "y": 5}, timeout=0.3)
        assert math.ran == []
        assert result.startswith("multiply was not run:"), result
        assert "Nothing was done" in result

    def test_exhausted_human_fails_closed(self) -> None:
        math, result = self._run([], {"x": 2, "y": 5})
        assert math.ran == []
        assert result.startswith("multiply was not run:"), result

    def test_plain_function_runs_without_asking(self) -> None:
        math = _make([])
        ran: list[int] = []

        def add(x: int, y: int) -> int:
            """Add two integers."""
            ran.append(x + y)
            return x + y

        result = self.invoke(self.make_tool(add), {"x": 10, "y": 32}, "call_plain")
        assert result.strip() == "42"
        assert ran == [42]
        assert math.human.requests == []

    def test_when_false_runs_without_asking(self) -> None:
        math = _make([])

        @math.fl.require_approval(when=lambda x, y: x * y > 100)
        def multiply(x: int, y: int) -> int:
            """Multiply two integers."""
            math.record("multiply", x=x, y=y)
            return x * y

        tool = self.make_tool(multiply)
        assert self.invoke(tool, {"x": 2, "y": 5}, "call_small").strip() == "10"
        assert math.human.requests == []
        # Over the threshold the (empty) script cannot answer: fails closed, nothing runs.
        assert self.invoke(tool, {"x": 20, "y": 50}, "call_big").startswith("multiply was not run:")
        assert math.ran == [("multiply", {"x": 2, "y": 5})]

    def test_human_as_tool_returns_the_answer(self) -> None:
        math = _make([respond("blue")])
        ask = math.fl.human_as_tool()
        tool = self.make_tool(ask)
        assert self.tool_name(tool) == ask.__name__
        assert "message" in self.tool_parameters(tool)["properties"]
        result = self.invoke(tool, {"message": "What colour should the logo be?"}, "call_ask")
        assert result == "blue"
        [contact] = math.human.human_contact_requests
        assert contact.spec.msg == "What colour should the logo be?"

    def test_several_calls_in_one_turn_matched_by_call_id(self) -> None:
        self._call_id_check()
        math = _make(
            {
                "call_one": approve(),
                "call_two": reject("not this one"),
                "call_three": edit(x=7, y=7),
            }
        )
        tool = self.make_tool(_guarded_multiply(math))
        # Order differs from the script's order: decisions follow ids, never positions.
        results = self.invoke_turn(
            [
                ToolCall(tool, {"x": 3, "y": 3}, "call_three"),
                ToolCall(tool, {"x": 2, "y": 2}, "call_two"),
                ToolCall(tool, {"x": 1, "y": 1}, "call_one"),
            ]
        )
        assert results["call_one"].strip() == "1"
        assert results["call_two"] == rejection_message("multiply", "not this one")
        assert results["call_three"] == edited_message(
            "multiply", {"x": 3, "y": 3}, {"x": 7, "y": 7}, 49
        )
        assert sorted(math.ran, key=lambda r: r[1]["x"]) == [
            ("multiply", {"x": 1, "y": 1}),
            ("multiply", {"x": 7, "y": 7}),
        ]
        assert sorted(r.call_id for r in math.human.function_call_requests) == [
            "call_one",
            "call_three",
            "call_two",
        ]

    def test_retried_call_id_asks_the_human_once(self) -> None:
        self._call_id_check()
        math = _make([reject("no")])  # a second question would find the script empty
        tool = self.make_tool(_guarded_multiply(math))
        first = self.invoke(tool, {"x": 2, "y": 5}, "call_retry")
        second = self.invoke(tool, {"x": 2, "y": 5}, "call_retry")
        assert first == second == rejection_message("multiply", "no")
        assert len(math.human.function_call_requests) == 1
        assert math.ran == []

    def test_async_function_approve_and_reject(self) -> None:
        self._async_check()
        math = _make({"call_yes": approve(), "call_no": reject("too big")})
        tool = self.make_tool(_guarded_async_multiply(math))

        async def both() -> tuple[str, str]:
            return (
                await self.ainvoke(tool, {"x": 4, "y": 5}, "call_yes"),
                await self.ainvoke(tool, {"x": 9, "y": 9}, "call_no"),
            )

        yes, no = asyncio.run(both())
        assert yes.strip() == "20"
        assert no == rejection_message("multiply", "too big")
        assert math.ran == [("multiply", {"x": 4, "y": 5})]

    def test_sync_function_on_async_path(self) -> None:
        self._async_check()
        math, tool = _make([approve()]), None
        tool = self.make_tool(_guarded_multiply(math))
        result = asyncio.run(self.ainvoke(tool, {"x": 6, "y": 7}, "call_async_sync"))
        assert result.strip() == "42"
        assert math.ran == [("multiply", {"x": 6, "y": 7})]

    def test_name_description_and_schema_fidelity(self) -> None:
        math = _make([])

        @math.fl.require_approval()
        def transfer_funds(account_id: str, amount_cents: int, memo: str = "") -> str:
            """Move money from the company account to ``account_id``."""
            return "done"

        tool = self.make_tool(transfer_funds)
        assert self.tool_name(tool) == "transfer_funds"
        assert (
            self.tool_description(tool).strip()
            == "Move money from the company account to ``account_id``."
        )
        schema = self.tool_parameters(tool)
        properties = schema["properties"]
        assert set(properties) == {"account_id", "amount_cents", "memo"}
        assert properties["account_id"]["type"] == "string"
        assert properties["amount_cents"]["type"] == "integer"
        assert set(schema.get("required", [])) == {"account_id", "amount_cents"}

    def test_async_fidelity(self) -> None:
        math = _make([])
        tool = self.make_tool(_guarded_async_multiply(math))
        assert self.tool_name(tool) == "multiply"
        assert (
            self.tool_description(tool).strip() == "Multiply two integers and return the product."
        )
        assert set(self.tool_parameters(tool)["properties"]) == {"x", "y"}
