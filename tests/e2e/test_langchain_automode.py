"""LangChain's ``AutoModeMiddleware`` (langchain 1.5) escalating risky calls to a FunctionLayer
person through ``AutoModeEscalation``, in LangChain's real agent loop (``create_agent`` +
``ChatOpenAI``) against the scripted model. The classifier is a ``BaseDecisionModel`` with fixed
risk probabilities per call (the decision model is not what is tested); ``ScriptedHuman``
decides; the tool records every time its body runs.

On langchain releases without ``AutoModeMiddleware`` these tests are skipped.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from functionlayer import FunctionLayer
from functionlayer._feedback import rejection_message
from functionlayer.testing import ScriptedHuman, approve, edit, reject
from functionlayer.testing.model import ScriptedModel, text, tool_call, tool_results
from functionlayer_langchain import AutoModeEscalation
from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

auto_mode_module = pytest.importorskip(
    "langchain.agents.middleware.auto_mode", reason="this langchain has no AutoModeMiddleware"
)
AutoModeMiddleware = auto_mode_module.AutoModeMiddleware

from langchain_core.decisions import BaseDecisionModel  # noqa: E402
from langchain_core.decisions.types import ClassifierResponse  # noqa: E402

_threads = itertools.count(1)


class FixedRisk(BaseDecisionModel):
    """Risky when the transfer's amount is at least 100."""

    model: str = "fixed-risk"

    @property
    def _provider(self) -> str:
        return "test"

    def _classify(self, state: Any, questions: Any) -> ClassifierResponse:
        amount = state["tool_call"]["args"].get("amount", 0)
        risk = 0.9 if amount >= 100 else 0.1
        return ClassifierResponse.model_validate(
            {"model": self.model, "answers": {q: {"type": "noul", "noul": risk} for q in questions}}
        )


class Bank:
    def __init__(self) -> None:
        self.transfers: list[tuple[str, int]] = []

        def transfer(to: str, amount: int) -> str:
            """Send money to someone."""
            self.transfers.append((to, amount))
            return f"sent {amount} to {to}"

        self.transfer = transfer


def results_text(request: dict[str, Any]) -> str:
    return " | ".join(r.content for r in tool_results(request))


def run(
    human: ScriptedHuman | None, script: list[Any], *, use_async: bool = False
) -> tuple[Bank, ScriptedModel, Any]:
    bank = Bank()
    auto_mode = AutoModeMiddleware(tools=["transfer"], classifier=FixedRisk())
    middleware: Any = (
        auto_mode if human is None else AutoModeEscalation(auto_mode, FunctionLayer(backend=human))
    )
    with ScriptedModel(script) as model:
        llm = ChatOpenAI(
            model="gpt-4o-mini",
            base_url=model.base_url,
            api_key="unused",  # type: ignore[arg-type]
            max_retries=0,
        )
        agent = create_agent(llm, tools=[bank.transfer], middleware=[middleware])
        config = {"configurable": {"thread_id": f"automode-{next(_threads)}"}}
        payload = {"messages": [("user", "pay")]}
        if use_async:
            result = asyncio.run(agent.ainvoke(payload, config))
        else:
            result = agent.invoke(payload, config)
    assert model.errors == []
    return bank, model, result


def one(amount: int, call_id: str = "call_t") -> list[Any]:
    return [tool_call("transfer", {"to": "bob", "amount": amount}, id=call_id), text(results_text)]


def test_without_escalation_auto_mode_only_blocks() -> None:
    bank, model, _ = run(None, one(500))
    assert bank.transfers == []
    assert "was blocked" in tool_results(model.requests[1])[0].content


def test_low_risk_runs_without_asking_anyone() -> None:
    human = ScriptedHuman([])
    bank, _, _ = run(human, one(5))
    assert bank.transfers == [("bob", 5)]
    assert human.function_call_requests == []


@pytest.mark.parametrize("use_async", [False, True])
def test_risky_call_runs_once_after_a_person_approves(use_async: bool) -> None:
    human = ScriptedHuman({"automode:call_t": approve()})
    bank, model, _ = run(human, one(500), use_async=use_async)
    assert bank.transfers == [("bob", 500)]
    assert tool_results(model.requests[1])[0].content == "sent 500 to bob"
    [asked] = human.function_call_requests
    assert (asked.spec.fn, asked.spec.kwargs) == ("transfer", {"to": "bob", "amount": 500})
    assert "Escalated by AutoModeMiddleware" in (asked.spec.description or "")


def test_risky_call_rejected_never_runs_and_the_model_gets_the_feedback() -> None:
    human = ScriptedHuman({"automode:call_t": reject("not today")})
    bank, model, _ = run(human, one(500))
    assert bank.transfers == []
    assert tool_results(model.requests[1])[0].content == rejection_message("transfer", "not today")


def test_risky_call_runs_with_the_person_s_edits() -> None:
    human = ScriptedHuman({"automode:call_t": edit(amount=150)})
    bank, _, _ = run(human, one(500))
    assert bank.transfers == [("bob", 150)]


def test_a_repeated_tool_call_id_does_not_run_the_approval_twice() -> None:
    # The model sends the same tool call (same id) again: one approval, one execution.
    human = ScriptedHuman({"automode:call_t": approve()})
    script = [
        tool_call("transfer", {"to": "bob", "amount": 500}, id="call_t"),
        tool_call("transfer", {"to": "bob", "amount": 500}, id="call_t"),
        text(results_text),
    ]
    bank, model, _ = run(human, script)
    assert bank.transfers == [("bob", 500)]
    assert "already ran" in tool_results(model.requests[2])[-1].content


def test_no_decision_possible_fails_closed() -> None:
    human = ScriptedHuman([])  # nobody scripted: the backend raises instead of deciding
    bank, model, _ = run(human, one(500))
    assert bank.transfers == []
    assert "transfer was not run" in tool_results(model.requests[1])[0].content
