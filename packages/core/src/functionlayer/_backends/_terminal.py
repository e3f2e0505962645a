"""Ask the human at this process's terminal.

``y``/``yes`` (any case) approves. ``n``, ``no`` or an empty line rejects and reads one more line
as optional feedback; any other text rejects with that text as the feedback. End of input (no
terminal, e.g. in CI) rejects with a clear message and never hangs.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import IO

from functionlayer._backends._memory import InMemoryBackend
from functionlayer._display import format_arguments
from functionlayer._errors import NoHumanAvailableError
from functionlayer._models import FunctionCall, HumanContact

__all__ = ["TerminalBackend"]

_EOF = object()


class _LineReader:
    """Reads lines on a daemon thread so a prompt can time out without losing later lines."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lines: queue.Queue[str | object] = queue.Queue()
        self._eof = False
        self._thread = threading.Thread(target=self._pump, name="functionlayer-stdin", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                line = self._stream.readline()
            except (OSError, ValueError):  # closed or unreadable stream: same as end of input
                line = ""
            if not line:
                self._lines.put(_EOF)
                return
            self._lines.put(line.rstrip("\r\n"))

    def readline(self, timeout: float | None) -> str | None:
        """The next line; ``None`` at end of input. Raises ``TimeoutError`` when none came in time."""
        if self._eof:
            return None
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if item is _EOF:
            self._eof = True
            return None
        assert isinstance(item, str)
        return item


_READERS: dict[int, _LineReader] = {}
_READERS_LOCK = threading.Lock()


def _reader_for(stream: IO[str]) -> _LineReader:
    with _READERS_LOCK:
        reader = _READERS.get(id(stream))
        if reader is None or reader._stream is not stream:
            reader = _READERS[id(stream)] = _LineReader(stream)
        return reader


class TerminalBackend(InMemoryBackend):
    """Prompts at the terminal when a request is created; one prompt at a time."""

    def __init__(self, *, input: IO[str] | None = None, output: IO[str] | None = None) -> None:
        super().__init__()
        self._input = input
        self._output = output
        self._prompting = threading.Lock()

    def __repr__(self) -> str:
        return "TerminalBackend()"

    @property
    def _out(self) -> IO[str]:
        return self._output or sys.stdout

    def _say(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _readline(self, deadline: float | None) -> str | None:
        reader = _reader_for(self._input or sys.stdin)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        return reader.readline(timeout)

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        stored = super().create_function_call(call)
        if stored.completed:
            return stored  # the same call id was already decided here
        with self._prompting:
            self._prompt_function_call(stored)
        return self.get_function_call(call.call_id)

    def _prompt_function_call(self, call: FunctionCall) -> None:
        spec = call.spec
        deadline = time.monotonic() + spec.timeout_seconds if spec.timeout_seconds else None
        lines = [
            "",
            f"=== FunctionLayer: the agent wants to call {spec.fn} (run {call.run_id}, call {call.call_id})",
        ]
        if spec.description:
            lines.extend("  | " + line for line in spec.description.splitlines())
        lines.append(format_arguments(spec.kwargs, spec.parameters, indent="    "))
        if spec.reject_options:
            lines.append(
                "Reject options: " + ", ".join(o.title or o.name for o in spec.reject_options)
            )
        if deadline is not None:
            lines.append(f"(rejected automatically after {spec.timeout_seconds:g} seconds)")
        lines.append("Approve? [y/N, or type feedback to reject]: ")
        self._say("\n".join(lines))
        try:
            answer = self._readline(deadline)
            if answer is None:
                self._say("\n")
                raise NoHumanAvailableError(
                    "no terminal input (end of input): nobody can approve at this terminal"
                )
            choice = answer.strip()
            if choice.lower() in ("y", "yes"):
                self.respond(call.call_id, approved=True, responded_by="terminal")
                return
            feedback = choice
            if choice.lower() in ("", "n", "no"):
                self._say("Feedback for the agent (optional): ")
                more = self._readline(deadline)
                feedback = (more or "").strip()
        except TimeoutError:
            self._say("\nNo answer in time: rejected.\n")
            self.expire_function_call(
                call.call_id, f"no human answered within {spec.timeout_seconds:g} seconds"
            )
            return
        option = self._match_option(call, feedback)
        self.respond(
            call.call_id,
            approved=False,
            comment=feedback or None,
            reject_option_name=option,
            responded_by="terminal",
        )

    @staticmethod
    def _match_option(call: FunctionCall, feedback: str) -> str | None:
        for option in call.spec.reject_options or ():
            if feedback.lower() in (option.name.lower(), (option.title or "").lower()):
                return option.name
        return None

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        stored = super().create_human_contact(contact)
        if stored.completed:
            return stored
        with self._prompting:
            spec = stored.spec
            deadline = time.monotonic() + spec.timeout_seconds if spec.timeout_seconds else None
            header = (
                f"=== FunctionLayer: the agent asks (run {stored.run_id}, call {stored.call_id})"
            )
            if spec.subject:
                header += f"\nSubject: {spec.subject}"
            options = ""
            if spec.response_options:
                options = "\nOptions: " + ", ".join(
                    o.title or o.name for o in spec.response_options
                )
            self._say(f"\n{header}\n{spec.msg}{options}\nYour answer: ")
            try:
                answer = self._readline(deadline)
            except TimeoutError:
                self._say("\nNo answer in time.\n")
                return self.expire_human_contact(stored.call_id, "no answer in time")
            if answer is None:
                self._say("\n")
                raise NoHumanAvailableError(
                    "no terminal input (end of input): nobody can answer at this terminal"
                )
            option = None
            for candidate in spec.response_options or ():
                if answer.strip().lower() in (
                    candidate.name.lower(),
                    (candidate.title or "").lower(),
                ):
                    option = candidate.name
            self.answer(
                stored.call_id, answer, response_option_name=option, responded_by="terminal"
            )
        return self.get_human_contact(stored.call_id)
