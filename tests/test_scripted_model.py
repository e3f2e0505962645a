"""The scripted OpenAI-compatible model, driven by the real ``openai`` SDK over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from functionlayer.testing.model import (
    Reply,
    ScriptedModel,
    mark_task_successful,
    math_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)

USER: Any = [{"role": "user", "content": "multiply 2 and 5, then add 32 to the result"}]


def client(model: ScriptedModel) -> openai.OpenAI:
    return openai.OpenAI(base_url=model.base_url, api_key="unused", max_retries=0)


def test_non_streaming_tool_calls_and_text() -> None:
    script = [
        tool_calls(tool_call("multiply", {"x": 2, "y": 5}), tool_call("add", {"x": 1, "y": 2})),
        text("done"),
    ]
    with ScriptedModel(script) as model:
        c = client(model)
        first = c.chat.completions.create(model="gpt-4o", messages=USER)
        calls = first.choices[0].message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        assert [(call.function.name, json.loads(call.function.arguments)) for call in calls] == [
            ("multiply", {"x": 2, "y": 5}),
            ("add", {"x": 1, "y": 2}),
        ]
        ids = [call.id for call in calls]
        assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
        second = c.chat.completions.create(model="gpt-4o", messages=USER)
        assert second.choices[0].message.content == "done"
        assert second.choices[0].finish_reason == "stop"
        assert second.usage is not None and second.usage.total_tokens > 0
        assert model.remaining == 0
        assert model.errors == []


def test_streaming_reassembles_split_arguments_and_reports_usage() -> None:
    args = {"query": "a fairly long argument so that it is split across chunks", "n": 3}
    with ScriptedModel([tool_call("search", args, id="call_fixed"), text("two words")]) as model:
        c = client(model)
        stream = c.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        ids, names, usage, finish = [], [], None, None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for delta in choice.delta.tool_calls or []:
                    if delta.id:
                        ids.append(delta.id)
                    if delta.function and delta.function.name:
                        names.append(delta.function.name)
                    if delta.function and delta.function.arguments:
                        pieces.append(delta.function.arguments)
        assert len(pieces) > 1  # really split across chunks
        assert json.loads("".join(pieces)) == args
        assert ids == ["call_fixed"] and names == ["search"] and finish == "tool_calls"
        assert usage is not None and usage.total_tokens > 0

        # Text streams word by word; without include_usage no usage chunk is sent.
        chunks = list(c.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
        content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert content == "two words"
        assert all(ch.usage is None for ch in chunks)


def test_records_requests_and_function_steps_see_them() -> None:
    seen: list[Any] = []

    def echo(request: dict[str, Any]) -> Reply:
        seen.append(request)
        return Reply(content=f"results: {[r.content for r in tool_results(request)]}")

    with ScriptedModel([tool_call("multiply", {"x": 2, "y": 5}), echo]) as model:
        c = client(model)
        first = c.chat.completions.create(model="gpt-4o", messages=USER)
        call = (first.choices[0].message.tool_calls or [])[0]
        history = [
            *USER,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "10"},
        ]
        second = c.chat.completions.create(model="gpt-4o", messages=history)
        assert second.choices[0].message.content == "results: ['10']"
        assert seen == [model.requests[1]]
        assert model.requests[0]["messages"] == USER
        [result] = tool_results(model.requests[1])
        assert (result.call_id, result.name, result.content) == (call.id, "multiply", "10")


def test_exhausted_script_and_failing_step_answer_500_without_retry() -> None:
    def broken(request: dict[str, Any]) -> Reply:
        raise ValueError("boom")

    with ScriptedModel([broken]) as model:
        c = openai.OpenAI(base_url=model.base_url, api_key="unused")  # default retries on
        with pytest.raises(openai.InternalServerError, match=r"script step failed.*boom"):
            c.chat.completions.create(model="gpt-4o", messages=USER)
        with pytest.raises(openai.InternalServerError, match="script exhausted"):
            c.chat.completions.create(model="gpt-4o", messages=USER)
        assert len(model.requests) == 2  # x-should-retry: false stopped the SDK's retries
        assert len(model.errors) == 2


def test_math_script_follows_tool_results() -> None:
    with ScriptedModel(math_script()) as model:
        c = client(model)
        messages: list[Any] = list(USER)
        results = {"multiply": lambda a: a["x"] * a["y"], "add": lambda a: a["x"] + a["y"]}
        while True:
            reply = c.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message
            messages.append(reply.model_dump(exclude_none=True))
            if not reply.tool_calls:
                break
            for call in reply.tool_calls:
                args = json.loads(call.function.arguments)
                value = results[call.function.name](args)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": str(value)})
        assert "42" in (reply.content or "")
        assert [r.name for r in tool_results(model.requests[-1])] == ["multiply", "add"]


def test_math_script_reports_a_rejection_instead_of_continuing() -> None:
    with ScriptedModel(math_script()) as model:
        c = client(model)
        first = c.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message
        call = (first.tool_calls or [])[0]
        feedback = "User denied multiply with feedback: use 3 instead"
        messages = [
            *USER,
            first.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": feedback},
        ]
        final = c.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message
        assert not final.tool_calls
        assert feedback in (final.content or "")


def test_mark_task_successful_finds_controlflow_tool() -> None:
    tools = [
        {"type": "function", "function": {"name": "multiply", "parameters": {}}},
        {"type": "function", "function": {"name": "mark_task_ab12_successful", "parameters": {}}},
    ]
    with ScriptedModel([mark_task_successful("42"), mark_task_successful("x")]) as model:
        c = client(model)
        reply = c.chat.completions.create(model="gpt-4o", messages=USER, tools=tools).choices[0]
        [call] = reply.message.tool_calls or []
        assert call.function.name == "mark_task_ab12_successful"
        assert json.loads(call.function.arguments) == {"result": "42"}
        # Without such a tool the step fails loudly instead of letting ControlFlow loop.
        with pytest.raises(openai.InternalServerError, match="mark_task"):
            c.chat.completions.create(model="gpt-4o", messages=USER)


def test_responses_api() -> None:
    with ScriptedModel([tool_call("multiply", {"x": 2, "y": 5}), text("It is 10.")]) as model:
        c = client(model)
        first = c.responses.create(model="gpt-4o", input="multiply 2 and 5")
        [item] = first.output
        assert item.type == "function_call" and item.name == "multiply"
        second = c.responses.create(
            model="gpt-4o",
            input=[
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": "multiply",
                    "arguments": item.arguments,
                },
                {"type": "function_call_output", "call_id": item.call_id, "output": "10"},
            ],
        )
        assert second.output_text == "It is 10."
        assert [(r.name, r.content) for r in tool_results(model.requests[1])] == [
            ("multiply", "10")
        ]


def test_models_endpoint_and_unknown_paths() -> None:
    with ScriptedModel([]) as model:
        c = client(model)
        assert [m.id for m in c.models.list()] == ["scripted-model"]
        with pytest.raises(openai.NotFoundError):
            c.embeddings.create(model="x", input="y")


def test_command_line_serves_a_json_script(tmp_path: Path) -> None:
    script = tmp_path / "steps.json"
    script.write_text(
        json.dumps([{"tool_call": {"name": "add", "arguments": {"x": 1}}}, {"text": "ok"}])
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "functionlayer.testing.model", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        c = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        call = (
            c.chat.completions.create(model="m", messages=USER).choices[0].message.tool_calls or []
        )[0]
        assert call.function.name == "add"
        assert (
            c.chat.completions.create(model="m", messages=USER).choices[0].message.content == "ok"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_json_script_file_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "steps.json"
    script.write_text(json.dumps([{"nothing": 1}]))
    proc = subprocess.run(
        [sys.executable, "-m", "functionlayer.testing.model", "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "step 1 needs 'text', 'tool_call' or 'tool_calls'" in proc.stderr


# -- the Gemini API (generateContent), as google-genai speaks it ----------------------------------


def gemini_client(model: ScriptedModel) -> Any:
    from google import genai
    from google.genai import types

    return genai.Client(
        api_key="unused", http_options=types.HttpOptions(base_url=model.gemini_base_url)
    )


def test_gemini_function_calls_with_ids_then_text_from_the_same_script() -> None:
    from google.genai import types

    script = [
        tool_calls(
            tool_call("multiply", {"x": 2, "y": 5}, id="call_m"), tool_call("add", {"x": 1})
        ),
        echo_results,
    ]
    with ScriptedModel(script) as model:
        c = gemini_client(model)
        tool = types.Tool(
            function_declarations=[
                types.FunctionDeclaration(
                    name="multiply",
                    description="Multiply.",
                    parameters_json_schema={"type": "object", "properties": {"x": {}, "y": {}}},
                )
            ]
        )
        config = types.GenerateContentConfig(tools=[tool], system_instruction="be exact")
        first = c.models.generate_content(model="gemini-x", contents="go", config=config)
        calls = first.function_calls or []
        assert (calls[0].id, calls[0].name, calls[0].args) == (
            "call_m",
            "multiply",
            {"x": 2, "y": 5},
        )
        assert calls[1].name == "add" and (calls[1].id or "").startswith("call_")
        assert first.candidates and first.candidates[0].content
        answers = types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id=f.id, name=f.name, response={"result": n}
                    )
                )
                for f, n in zip(calls, [10, "denied"], strict=True)
            ],
        )
        history = [
            types.Content(role="user", parts=[types.Part(text="go")]),
            first.candidates[0].content,
            answers,
        ]
        second = c.models.generate_content(model="gemini-x", contents=history, config=config)
        assert second.text == "results: ['10', 'denied']"
    # The script saw the chat-completions shape; the Gemini body is kept beside it.
    [system, user] = model.requests[0]["messages"]
    assert system == {"role": "system", "content": "be exact"}
    assert user == {"role": "user", "content": "go"}
    assert model.requests[0]["tools"][0]["function"]["name"] == "multiply"
    assert model.requests[0]["gemini"]["contents"][0]["parts"] == [{"text": "go"}]
    assert [(r.call_id, r.name, r.content) for r in tool_results(model.requests[1])] == [
        ("call_m", "multiply", "10"),
        (calls[1].id, "add", "denied"),
    ]
    assert model.errors == []


def echo_results(request: dict[str, Any]) -> Reply:
    return Reply(content=f"results: {[r.content for r in tool_results(request)]}")


def test_gemini_streamed_and_math_script() -> None:
    from google.genai import types

    with ScriptedModel(math_script()) as model:
        c = gemini_client(model)
        [chunk] = list(c.models.generate_content_stream(model="gemini-x", contents="go"))
        [call] = chunk.function_calls or []
        assert (call.name, call.args) == ("multiply", {"x": 2, "y": 5})
        answer = types.Part(
            function_response=types.FunctionResponse(
                id=call.id, name=call.name, response={"result": 10}
            )
        )
        assert chunk.candidates and chunk.candidates[0].content
        history = [
            types.Content(role="user", parts=[types.Part(text="go")]),
            chunk.candidates[0].content,
            types.Content(role="user", parts=[answer]),
        ]
        second = c.models.generate_content(model="gemini-x", contents=history)
        assert [(f.name, f.args) for f in second.function_calls or []] == [
            ("add", {"x": 10, "y": 32})
        ]


def test_gemini_errors_answer_without_hanging() -> None:
    from google.genai import errors

    with ScriptedModel([]) as model:
        c = gemini_client(model)
        with pytest.raises(errors.ServerError, match="script exhausted"):
            c.models.generate_content(model="gemini-x", contents="go")
        with pytest.raises(errors.ClientError):
            c.models.embed_content(model="gemini-x", contents="go")  # no such method here
        assert len(model.requests) == 1
