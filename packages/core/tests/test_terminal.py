"""The terminal backend, driven through a real subprocess with piped standard input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import json, sys
    from functionlayer import FunctionLayer, TerminalBackend, ResponseOption

    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else None
    fl = FunctionLayer(backend=TerminalBackend(), run_id="term-run", timeout=timeout)
    ran = []

    @fl.require_approval(reject_options=[ResponseOption(name="too_big", title="Too big")])
    def multiply(x: int, y: int) -> int:
        ran.append([x, y])
        return x * y

    result = multiply(2, 5)
    print("\\nRESULT " + json.dumps({"result": result, "ran": ran}))
    """
)


def run(stdin: str | None, *args: str, timeout: float = 30) -> tuple[dict[str, object], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    import json

    return json.loads(line[len("RESULT ") :]), proc.stdout


@pytest.mark.parametrize("answer", ["y", "YES", " yes "])
def test_y_or_yes_approves(answer: str) -> None:
    outcome, shown = run(answer + "\n")
    assert outcome == {"result": 10, "ran": [[2, 5]]}
    assert "multiply" in shown and "x: 2" in shown and "term-run" in shown


@pytest.mark.parametrize("answer", ["n", "No", ""])
def test_no_or_empty_then_reads_feedback(answer: str) -> None:
    outcome, _ = run(f"{answer}\nuse smaller numbers\n")
    assert outcome == {
        "result": "User denied multiply with feedback: use smaller numbers",
        "ran": [],
    }


def test_no_then_empty_feedback_rejects_without_feedback() -> None:
    outcome, _ = run("n\n\n")
    assert outcome == {"result": "User denied multiply without feedback.", "ran": []}


def test_any_other_text_is_itself_the_feedback() -> None:
    outcome, _ = run("only if x is 3\n")
    assert outcome == {"result": "User denied multiply with feedback: only if x is 3", "ran": []}


def test_reject_option_by_name() -> None:
    outcome, _ = run("too_big\n")
    assert outcome["result"] == "User denied multiply (Too big) with feedback: too_big"


def test_end_of_input_rejects_clearly_and_never_hangs() -> None:
    for stdin in ("", None):
        outcome, _ = run(stdin, timeout=20)
        assert outcome["ran"] == []
        assert str(outcome["result"]).startswith("multiply was not run")
        assert "no terminal input" in str(outcome["result"])


def test_end_of_input_while_reading_feedback_still_rejects() -> None:
    outcome, _ = run("n\n")
    assert outcome == {"result": "User denied multiply without feedback.", "ran": []}


def test_timeout_at_the_terminal_rejects() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "0.5"],
        stdin=subprocess.PIPE,  # kept open and silent: nobody answers
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.wait(timeout=20) == 0
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        proc.kill()
        assert proc.stdin is not None
        proc.stdin.close()
    assert "timed out, no one answered within 0.5 seconds" in out
    assert '"ran": []' in out


def test_human_as_tool_in_the_terminal() -> None:
    program = textwrap.dedent(
        """
        from functionlayer import FunctionLayer, TerminalBackend
        fl = FunctionLayer(backend=TerminalBackend())
        ask = fl.human_as_tool()
        print("\\nANSWER " + ask("What colour should the logo be?"))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", program], input="teal\n", capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert "What colour should the logo be?" in proc.stdout
    assert "ANSWER teal" in proc.stdout


DISPLAY_PROGRAM = textwrap.dedent(
    """
    from functionlayer import FunctionLayer, TerminalBackend

    fl = FunctionLayer(backend=TerminalBackend(), run_id="term-run")

    @fl.require_approval()
    def send_file(recipient: str, body: str, attachment: str) -> str:
        \"\"\"Email a file to someone outside the company.\"\"\"
        return "sent"

    print("RESULT", send_file("zed@example.com", "line one\\nline two", "invoice_\\u202efdp.sh"))
    """
)


def test_the_prompt_shows_the_docstring_signature_order_line_breaks_and_hidden_characters() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DISPLAY_PROGRAM],
        input="n\nno thanks\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout
    assert "Email a file to someone outside the company." in shown
    # Signature order (recipient, body, attachment), not alphabetical (attachment first).
    assert shown.index("recipient:") < shown.index("body:") < shown.index("attachment:")
    assert "        line one\n        line two" in shown  # real line breaks, indented
    assert "\\n" not in shown
    assert "attachment: invoice_⟨U+202E⟩fdp.sh" in shown and "\u202e" not in shown
    assert "⚠ This request contains invisible or direction-changing characters" in shown
    assert "RESULT User denied send_file with feedback: no thanks" in shown


# -- edit and respond at the terminal ----------------------------------------------------------


def test_edit_keeps_what_enter_keeps_and_runs_with_the_new_value() -> None:
    outcome, shown = run("e\n\n7\n")  # x kept, y becomes 7
    assert outcome["ran"] == [[2, 7]]
    assert "14" in str(outcome["result"])
    assert "[y/N, or type feedback to reject; e = edit the arguments; r = answer instead]" in shown
    assert "x [2]:" in shown and "y [5]:" in shown
    assert "Approved with y = 7" in shown


def test_an_invalid_edit_is_asked_again() -> None:
    outcome, shown = run("edit\nthree\n3\n\n")  # "three" is not an integer: asked again
    assert "not accepted: 'three' is not JSON of type integer" in shown
    assert outcome["ran"] == [[3, 5]]


def test_an_edit_that_changes_nothing_approves_as_proposed() -> None:
    outcome, shown = run("e\n\n5\n")  # Enter, then the same value
    assert outcome == {"result": 10, "ran": [[2, 5]]}
    assert "Nothing changed: approved as proposed." in shown


def test_respond_sends_an_answer_instead_of_running() -> None:
    outcome, _ = run("r\nuse 3 and 4 instead\n")
    assert outcome["ran"] == []
    assert "use 3 and 4 instead" in str(outcome["result"])


RESTRICTED = textwrap.dedent(
    """
    import json
    from functionlayer import FunctionLayer, TerminalBackend

    fl = FunctionLayer(backend=TerminalBackend(), run_id="term-run")
    ran = []

    @fl.require_approval(decisions=["approve", "reject"])
    def multiply(x: int, y: int) -> int:
        ran.append([x, y])
        return x * y

    print("\\nRESULT " + json.dumps({"result": multiply(2, 5), "ran": ran}))
    """
)


def test_only_the_allowed_decisions_are_offered() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", RESTRICTED], input="e\n", capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert "e = edit" not in proc.stdout and "r = answer" not in proc.stdout
    assert '"ran": []' in proc.stdout  # "e" is feedback here: a rejection


def test_routing_the_terminal_cannot_serve_is_named_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import io

    from functionlayer import ContactChannel, FunctionLayer, SlackContactChannel, TerminalBackend
    from functionlayer._backends import _terminal

    monkeypatch.setattr(_terminal, "_warned", set(), raising=False)
    fl = FunctionLayer(
        backend=TerminalBackend(input=io.StringIO("y\ny\n"), output=io.StringIO()), run_id="w"
    )
    slack = ContactChannel(slack=SlackContactChannel(channel_or_user_id="C-OPS"))

    @fl.require_approval(slack)
    def deploy(env: str) -> str:
        return f"deployed {env}"

    with caplog.at_level("WARNING", logger="functionlayer"):
        assert deploy("prod") == "deployed prod"
        assert deploy("staging") == "deployed staging"
    warnings = [r.getMessage() for r in caplog.records if "cannot serve" in r.getMessage()]
    assert warnings == [
        "the terminal cannot serve Slack channels: the person at this terminal decides instead "
        "(send approvals to a FunctionLayer server with FUNCTIONLAYER_API_BASE to reach them)"
    ]


IRREVERSIBLE = textwrap.dedent(
    """
    import json
    from functionlayer import FunctionLayer, RequestContext, TerminalBackend, request_context_scope

    fl = FunctionLayer(backend=TerminalBackend(), run_id="term-run")
    ran = []

    @fl.require_approval(irreversible=True)
    def drop_table(name: str) -> str:
        ran.append(name)
        return "dropped"

    told = RequestContext(user_request="drop it\\u202e now", reason="asked")
    with request_context_scope(told):
        result = drop_table("users")
    print("\\nRESULT " + json.dumps({"result": result, "ran": ran}))
    """
)


@pytest.mark.parametrize(
    ("stdin", "runs"),
    [("y\ndrop_table\n", True), ("y\n\n", False), ("y\nyes\n", False), ("y\n", False)],
)
def test_an_irreversible_function_needs_its_name_typed(stdin: str, runs: bool) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IRREVERSIBLE],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    import json

    outcome = json.loads(line[len("RESULT ") :])
    assert outcome["ran"] == (["users"] if runs else [])
    assert "From the agent — may be wrong or injected:" in proc.stdout
    assert "> drop it⟨U+202E⟩ now" in proc.stdout
    assert "Type its name to confirm" in proc.stdout
