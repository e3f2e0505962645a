"""Pause now, resume later: LangChain's HumanInTheLoopMiddleware across processes, decided by a
person in FunctionLayer's web inbox.

1. Process 1 (a real subprocess) runs ``create_agent(..., middleware=[HumanInTheLoopMiddleware],
   checkpointer=<file-backed>)`` against the scripted model, pauses, sends the pending action to
   a real ``functionlayer-server`` with ``HITLBridge.submit`` and exits.
2. A person logs in to the inbox (login form + CSRF, their own session: not the agent's token)
   and decides.
3. Process 2 (another subprocess) loads the checkpoint, ``HITLBridge.collect``s the decision and
   resumes with ``Command(resume=...)``. The tool records each run of its body in a file.

The checkpointer: ``langgraph-checkpoint-sqlite`` is not in the lock, so the state goes to disk
through LangGraph's own ``InMemorySaver(factory=PersistentDict)``: the saver's three tables are
``langgraph.checkpoint.memory.PersistentDict``s, pickled to files when the saver's context
exits and loaded when the next process opens them.

This file is also the worker: ``python test_langchain_hitl_resume.py pause|resume <dir>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
THREAD_ID = "order-42"
PERSON, PASSWORD = "alice", "correct horse battery staple"


# -- the worker (runs in the subprocesses) -------------------------------------------------------


def file_checkpointer(directory: Path) -> Any:
    """An InMemorySaver whose tables live in pickle files under ``directory`` (see module doc)."""
    from langgraph.checkpoint.memory import InMemorySaver, PersistentDict

    names = iter(("storage", "writes", "blobs"))  # the order InMemorySaver creates them in

    def table(*default_factory: Any) -> PersistentDict:
        path = directory / f"checkpoint-{next(names)}.pickle"
        stored = PersistentDict(*default_factory, filename=str(path))
        if path.exists():
            stored.load()
        return stored

    return InMemorySaver(factory=table)


def worker(phase: str, directory: Path) -> dict[str, Any]:
    from functionlayer import ContactChannel, FunctionLayer
    from functionlayer_langchain import HITLBridge
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware
    from langchain_openai import ChatOpenAI

    def multiply(x: int, y: int) -> int:
        """Multiply two integers."""
        with (directory / "executions.jsonl").open("a") as log:
            log.write(json.dumps({"pid": os.getpid(), "x": x, "y": y}) + "\n")
        return x * y

    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=os.environ["SCRIPTED_MODEL_URL"],
        api_key="unused",  # type: ignore[arg-type]
        max_retries=0,
    )
    fl = FunctionLayer(
        api_base=os.environ["FUNCTIONLAYER_API_BASE"],
        api_token=os.environ["FUNCTIONLAYER_API_TOKEN"],
    )
    bridge = HITLBridge(fl, channel=ContactChannel(users=[PERSON]))
    config = {"configurable": {"thread_id": THREAD_ID}}
    with file_checkpointer(directory) as saver:
        agent = create_agent(
            llm,
            tools=[multiply],
            middleware=[HumanInTheLoopMiddleware({"multiply": True})],
            checkpointer=saver,
        )
        if phase == "pause":
            agent.invoke({"messages": [("user", "multiply 2 and 5")]}, config)
            sent = bridge.submit(agent, config)
            return {"paused": True, "sent": [call.call_id for call in sent]}
        if not bridge.pending(agent, config):
            return {"paused": False}
        command = bridge.collect(agent, config)
        if command is None:
            return {"paused": True, "decided": False}
        result = agent.invoke(command, config)
        return {"paused": False, "decided": True, "answer": result["messages"][-1].content}


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1], Path(sys.argv[2]))))
    sys.exit(0)


# -- the test ----------------------------------------------------------------------------------

import httpx  # noqa: E402
import pytest  # noqa: E402
from functionlayer.testing.model import (  # noqa: E402
    ScriptedModel,
    text,
    tool_call,
    tool_results,
)

from tests._support.inbox import decide_in_inbox, log_in  # noqa: E402
from tests._support.servers import ServerProcess  # noqa: E402


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(f"sqlite:///{tmp_path / 'server.sqlite3'}", tmp_path / "server.log")
    process.create_user(PERSON, PASSWORD)
    process.start()
    try:
        yield process
    finally:
        process.kill()


def run_process(
    phase: str, directory: Path, model: ScriptedModel, server: ServerProcess
) -> dict[str, Any]:
    env = {
        **os.environ,
        "SCRIPTED_MODEL_URL": model.base_url,
        "FUNCTIONLAYER_API_BASE": server.api_base,
        "FUNCTIONLAYER_API_TOKEN": server.token,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, __file__, phase, str(directory)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def person_decides(server: ServerProcess, call_id: str, form: dict[str, str]) -> None:
    """A person logs in to the web inbox with the login form and decides ``call_id``.

    Their own session and CSRF token, as a browser would: not the agent's API token.
    """
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        log_in(browser, PERSON, PASSWORD)
        decide_in_inbox(browser, call_id, form)


def executions(directory: Path) -> list[dict[str, Any]]:
    log = directory / "executions.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


# Each process start imports LangChain (seconds, more on a busy machine): the extra checks of
# an undecided and of an already resumed thread run in the first case only.
@pytest.mark.parametrize(
    ("form", "ran_with", "answer", "extra_checks"),
    [
        ({"action": "approve"}, {"x": 2, "y": 5}, "10", True),
        ({"action": "edit", "edited_kwargs": '{"x": 3, "y": 5}'}, {"x": 3, "y": 5}, "15", False),
    ],
    ids=["approved", "edited"],
)
def test_pause_in_one_process_decide_in_the_inbox_resume_in_another(
    tmp_path: Path,
    server: ServerProcess,
    form: dict[str, str],
    ran_with: dict[str, int],
    answer: str,
    extra_checks: bool,
) -> None:
    state = tmp_path / "agent"
    state.mkdir()
    script = [
        tool_call("multiply", {"x": 2, "y": 5}, id="call_order42"),
        text(lambda request: tool_results(request)[-1].content.split()[-1]),
    ]
    with ScriptedModel(script) as model:
        paused = run_process("pause", state, model, server)
        assert paused == {"paused": True, "sent": ["hitl:call_order42"]}
        assert executions(state) == []

        if extra_checks:  # later, elsewhere: nothing decided yet, so nothing runs
            assert run_process("resume", state, model, server) == {
                "paused": True,
                "decided": False,
            }

        person_decides(server, "hitl:call_order42", form)

        resumed = run_process("resume", state, model, server)
        assert resumed == {"paused": False, "decided": True, "answer": answer}
        if extra_checks:  # once more: the thread is no longer paused, the body does not rerun
            assert run_process("resume", state, model, server) == {"paused": False}

    [ran] = executions(state)
    assert {"x": ran["x"], "y": ran["y"]} == ran_with
    assert model.errors == [] and len(model.requests) == 2
    with server.client() as api:
        call = api.get("/function_calls/hitl:call_order42").json()
    assert call["run_id"] == f"langgraph-thread:{THREAD_ID}"
    assert call["status"]["responded_by"] == PERSON
