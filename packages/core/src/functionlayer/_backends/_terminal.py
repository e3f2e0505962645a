"""Ask the human at this process's terminal.

``y``/``yes`` (any case) approves. ``e``/``edit`` asks for each argument in turn (Enter keeps
it; a new value is JSON, or plain text for a string) and approves with the changed ones, checked
against the request's JSON schema and asked again when they do not fit. ``r``/``respond`` reads
an answer that goes to the agent instead of running the function. ``n``, ``no`` or an empty line
rejects and reads one more line as optional feedback; any other text rejects with that text as
the feedback. Only the decisions the function allows are offered. End of input (no terminal,
e.g. in CI) rejects with a clear message and never hangs.

Ctrl-C at a prompt stops the program with one line and exit status 130, nothing run, also when
the prompt is on a framework's worker thread (see ``functionlayer._interrupt``: the prompt is
an open wait, answered with "interrupted").
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from functionlayer import _interrupt
from functionlayer._backends._memory import InMemoryBackend
from functionlayer._backends._terminal_input import Interrupted, as_json, parse_value, reader_for
from functionlayer._channel_models import ApprovalPolicy, ContactChannel
from functionlayer._display import format_context, ordered_names, show_arguments
from functionlayer._errors import NoHumanAvailableError
from functionlayer._models import FunctionCall, HumanContact
from functionlayer._visible import make_visible

__all__ = ["TerminalBackend"]


class TerminalBackend(InMemoryBackend):
    """Prompts at the terminal when a request is created; one prompt at a time."""

    def __init__(self, *, input: IO[str] | None = None, output: IO[str] | None = None) -> None:
        super().__init__()
        self._input = input
        self._output = output
        self._prompting = threading.Lock()
        _interrupt.install()

    def __repr__(self) -> str:
        return "TerminalBackend()"

    @property
    def _out(self) -> IO[str]:
        return self._output or sys.stdout

    def _say(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _readline(self, deadline: float | None, what: str) -> str | None:
        reader = reader_for(self._input or sys.stdin)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())

        def interrupted() -> str:
            reader.interrupt()
            return ""

        try:
            with _interrupt.waiting(what, interrupted, self._out):
                return reader.readline(timeout)
        except Interrupted:
            raise NoHumanAvailableError("interrupted (Ctrl-C) at the terminal prompt") from None

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        stored = super().create_function_call(call)
        if stored.completed:
            return stored  # the same call id was already decided here
        _warn_unserved(stored.spec.channel, stored.spec.policy)
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
            description = make_visible(spec.description)[0]
            lines.extend("  | " + line for line in description.splitlines())
        told = format_context(spec.context, indent="  ")
        if told:
            lines.append(told)  # the agent's words, labelled and quoted, never the system's
        if spec.irreversible:
            lines.append(f"  ⚠ IRREVERSIBLE: approving asks you to type {spec.fn} to confirm.")
        # The terminal has no size limit: every argument in full (hidden characters marked).
        lines.append(show_arguments(spec.kwargs, spec.parameters, room=None, indent="    ").text)
        if spec.reject_options:
            lines.append(
                "Reject options: " + ", ".join(o.title or o.name for o in spec.reject_options)
            )
        if deadline is not None:
            lines.append(f"(rejected automatically after {spec.timeout_seconds:g} seconds)")
        allowed = set(spec.allowed_decisions or ("approve", "reject", "edit", "respond"))
        also = [
            label
            for kind, label in (
                ("edit", "e = edit the arguments"),
                ("respond", "r = answer instead"),
            )
            if kind in allowed and (kind != "edit" or spec.kwargs)
        ]
        lines.append(
            ("Approve? [y/N" if "approve" in allowed else "Reject? [N")
            + ", or type feedback to reject"
            + "".join("; " + m for m in also)
            + "]: "
        )
        self._say("\n".join(lines))
        try:
            answer = self._readline(deadline, f"{spec.fn} was not run")
            if answer is None:
                self._say("\n")
                raise NoHumanAvailableError(
                    "no terminal input (end of input): nobody can approve at this terminal"
                )
            choice = answer.strip()
            word = choice.lower()
            if word in ("y", "yes") and "approve" in allowed:
                if self._confirmed(call, deadline):
                    self.respond(call.call_id, approved=True, responded_by="terminal")
                    return
                choice = _NOT_CONFIRMED
            if word in ("e", "edit") and "edit" in allowed and spec.kwargs:
                edits = self._ask_edits(call, deadline)
                if edits and not self._confirmed(call, deadline):
                    choice = _NOT_CONFIRMED
                elif edits:
                    self._say(
                        "Approved with "
                        + ", ".join(f"{k} = {as_json(v)}" for k, v in edits.items())
                        + "\n"
                    )
                    self.respond(
                        call.call_id, approved=True, edited_kwargs=edits, responded_by="terminal"
                    )
                    return
                elif "approve" in allowed:
                    if self._confirmed(call, deadline):
                        self._say("Nothing changed: approved as proposed.\n")
                        self.respond(call.call_id, approved=True, responded_by="terminal")
                        return
                    choice = _NOT_CONFIRMED
                else:
                    self._say("Nothing changed, and this function takes no plain approval.\n")
                    choice = "no change was made"
            if word in ("r", "respond") and "respond" in allowed:
                self._say(f"Your answer for the agent (instead of running {spec.fn}): ")
                text = (self._readline(deadline, f"{spec.fn} was not run") or "").strip()
                if text:
                    self.respond(
                        call.call_id, approved=False, response=text, responded_by="terminal"
                    )
                    return
                self._say("No answer given: rejected instead.\n")
                choice = "no answer was given"
            feedback = choice
            if choice.lower() in ("", "n", "no"):
                self._say("Feedback for the agent (optional): ")
                more = self._readline(deadline, f"{spec.fn} was not run")
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

    def _confirmed(self, call: FunctionCall, deadline: float | None) -> bool:
        """For an irreversible function, the second step: the person types its name. Anything
        else is no approval (the call is rejected)."""
        if not call.spec.irreversible:
            return True
        self._say(f"{call.spec.fn} cannot be undone. Type its name to confirm: ")
        typed = (self._readline(deadline, f"{call.spec.fn} was not run") or "").strip()
        if typed == call.spec.fn:
            return True
        self._say("Not confirmed: rejected.\n")
        return False

    def _ask_edits(self, call: FunctionCall, deadline: float | None) -> dict[str, Any]:
        """Each argument in display order: Enter keeps it, a new value replaces it (checked
        against the schema, asked again until it fits). Returns only the changed ones."""
        spec = call.spec
        properties = (spec.parameters or {}).get("properties") or {}
        self._say(
            "For each argument, type a new value (JSON, or plain text for a string) or press "
            "Enter to keep it.\n"
        )
        edits: dict[str, Any] = {}
        for name in ordered_names(spec.kwargs, spec.parameters):
            current = spec.kwargs[name]
            schema = properties.get(name) if isinstance(properties, dict) else None
            while True:
                self._say(f"  {make_visible(name)[0]} [{make_visible(as_json(current))[0]}]: ")
                line = self._readline(deadline, f"{spec.fn} was not run")
                if line is None:
                    raise NoHumanAvailableError("end of input while editing: nothing was approved")
                if not line.strip():
                    break
                value, problem = parse_value(line, schema if isinstance(schema, dict) else None)
                if problem is None:
                    if as_json(value) != as_json(current):
                        edits[name] = value
                    break
                self._say(
                    f"    not accepted: {problem}; try again (Enter keeps {as_json(current)})\n"
                )
        return edits

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
        _warn_unserved(stored.spec.channel, None)
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
            told = format_context(spec.context, indent="  ")  # the agent's words, labelled
            told = f"\n{told}" if told else ""
            self._say(f"\n{header}\n{spec.msg}{told}{options}\nYour answer: ")
            try:
                answer = self._readline(deadline, "the question was not answered")
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


_NOT_CONFIRMED = "the approver did not confirm the irreversible call"


_warned: set[str] = set()


def _warn_unserved(channel: ContactChannel | None, policy: ApprovalPolicy | None) -> None:
    """Routing the terminal cannot serve (Slack, email, Discord, Teams, SMS, WhatsApp, inbox
    users, a policy's channels or responders) is named once per process on the
    ``functionlayer`` logger: the person at this terminal decides instead, and nobody there is
    notified."""
    kinds: list[str] = []
    for target in [channel, *((policy.channels or []) if policy is not None else [])]:
        if target is None:
            continue
        for kind in ("slack", "email", "discord", "teams", "sms", "whatsapp", "users"):
            if getattr(target, kind, None) and kind not in kinds:
                kinds.append(kind)
    if policy is not None and policy.responders and "responders" not in kinds:
        kinds.append("responders")
    new = [k for k in kinds if k not in _warned]
    if not new:
        return
    _warned.update(new)
    import logging

    logging.getLogger("functionlayer").warning(
        "the terminal cannot serve %s: the person at this terminal decides instead (send "
        "approvals to a FunctionLayer server with FUNCTIONLAYER_API_BASE to reach them)",
        ", ".join(_UNSERVED[k] for k in new),
    )


_UNSERVED = {
    "slack": "Slack channels",
    "email": "email",
    "discord": "Discord",
    "teams": "Microsoft Teams",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "users": "inbox users",
    "responders": "a policy's responders",
}
