"""Asking a human through FunctionLayer, shared by the gateway and the permission-prompt tool.

Both speak MCP over stdio, so this process's stdin and stdout *are* the MCP stream: a terminal
prompt on them would corrupt the protocol and read JSON-RPC as answers. The terminal backend
therefore talks to the controlling terminal, ``/dev/tty``, or to the terminal device named with
``--tty`` / ``tty =``. Start-up fails with a clear message when it cannot be opened: CI, a
service, or a client that starts its servers in a new session without a terminal (the Python
``mcp`` SDK's ``stdio_client`` does), unless a device is named.

Every outcome is turned into one :class:`Verdict`; every text the LLM sees comes from
:mod:`functionlayer.adapters`. One approval, one execution: a ``run`` verdict holds the claim on
the call's one execution (``functionlayer.adapters.aclaim``), taken before anything runs; an
approval already used (the same call id asked about again) is a ``refuse`` verdict saying the
call already ran, and a claim that cannot be recorded is a ``refuse`` verdict too (fail closed).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

import anyio
from functionlayer import (
    ApprovalTimeoutError,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionLayer,
    InvalidEditError,
    adapters,
)

if TYPE_CHECKING:
    from functionlayer import Backend

__all__ = ["BackendChoice", "TerminalUnavailableError", "Verdict", "ask", "make_backend"]

BackendChoice = Literal["auto", "server", "terminal"]

TTY_PATH = "/dev/tty"


class TerminalUnavailableError(RuntimeError):
    """The terminal backend was chosen but this process has no controlling terminal."""


def make_backend(choice: BackendChoice, *, tty_path: str = TTY_PATH) -> Backend:
    """The backend for ``choice``; ``auto`` is the server when ``FUNCTIONLAYER_API_BASE`` is set.

    Raises :class:`TerminalUnavailableError` or ``ValueError`` with a message for the user.
    """
    if choice == "auto":
        choice = "server" if os.environ.get("FUNCTIONLAYER_API_BASE") else "terminal"
    if choice == "server":
        from functionlayer import HttpBackend

        return HttpBackend()  # ValueError when FUNCTIONLAYER_API_BASE is unset
    from functionlayer import TerminalBackend

    try:
        tty_in: IO[str] = open(tty_path, encoding="utf-8")  # noqa: SIM115 - lives with the process
        tty_out: IO[str] = open(tty_path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise TerminalUnavailableError(
            f"the terminal backend needs a terminal, but {tty_path} cannot be opened ({exc}). "
            "stdin and stdout carry the MCP stream, so approvals cannot be asked there. Run the "
            "MCP client from a terminal, or use a FunctionLayer server: set "
            'FUNCTIONLAYER_API_BASE and FUNCTIONLAYER_API_TOKEN (backend = "server").'
        ) from exc
    return TerminalBackend(input=tty_in, output=tty_out)


@dataclass(frozen=True)
class Verdict:
    """What to do with a call after asking.

    ``run``: call the tool with ``arguments`` (``edited`` when the human changed them); ``claim``
    holds its one execution (report the outcome with it where it can be seen).
    ``refuse``: do not call it; ``text`` tells the LLM why (rejection, expiry, failure).
    ``answer``: do not call it; the human answered instead, ``text`` is their answer.
    ``pending``: nobody decided within the hold: do not call it now; asking again under the
    same ``call_id`` resumes the same request.
    """

    kind: Literal["run", "refuse", "answer", "pending"]
    arguments: dict[str, Any] = field(default_factory=dict)
    proposed: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    edited: bool = False
    call_id: str = ""
    claim: adapters.Claim | None = None

    def edited_text(self, name: str, result: str) -> str:
        return adapters.edited_message(name, self.proposed, self.arguments, result)


async def ask(
    client: FunctionLayer,
    *,
    name: str,
    arguments: Mapping[str, Any],
    call_id: str,
    timeout: float | None,
    description: str | None = None,
    users: list[str] | None = None,
    validate_edits: Callable[[dict[str, Any]], None] | None = None,
    hold: float | None = None,
    deadline: float | None = None,
) -> Verdict:
    """Ask for approval of ``name(**arguments)`` under ``call_id`` and interpret the decision.

    Never raises for a failure to get a decision: that is a ``refuse`` verdict (fail closed).
    A ``run`` verdict is returned only with the execution claimed.
    ``validate_edits`` raises ``InvalidEditError`` for edited arguments the tool cannot take.

    ``hold``: wait at most this long for the decision, then return a ``pending`` verdict and
    leave the request open (asking again with the same ``call_id`` and arguments resumes it:
    creation is idempotent per call id). Only the wait is cut short: once a decision is read,
    the claim is taken whatever the time. ``deadline`` (``time.monotonic()``) is when the request
    expires when it is resumed, so resuming never extends ``timeout``; the request's own
    ``timeout_seconds`` stays ``timeout``, as when it was created.
    """
    proposed = dict(arguments)
    spec = FunctionCallSpec(
        fn=name,
        kwargs=proposed,
        timeout_seconds=timeout,
        description=description,
        channel=ContactChannel(users=users) if users else None,
    )
    wait = timeout if deadline is None else max(deadline - time.monotonic(), 0.001)
    try:
        with anyio.move_on_after(hold) as held:
            decided = await client.afetch_approval(spec, call_id, timeout=wait)
        if held.cancelled_caught:
            return Verdict("pending", call_id=call_id)
        verdict = _interpret(decided, name, proposed, timeout, validate_edits)
    except InvalidEditError as exc:
        return Verdict(
            "refuse", text=adapters.invalid_edit_message(name, str(exc)), call_id=call_id
        )
    except ApprovalTimeoutError:
        return Verdict("refuse", text=adapters.expired_message(name, timeout), call_id=call_id)
    except Exception as exc:  # no decision could be had, even through a bug: fail closed
        reason = f"{type(exc).__name__}: {exc}"
        return Verdict(
            "refuse", text=adapters.not_run_message(name, reason, call_id), call_id=call_id
        )
    if verdict.kind != "run":
        return verdict
    claim = await adapters.aclaim(client, verdict.call_id, name)  # never raises: fails closed
    if not claim.proceed:
        return Verdict("refuse", text=claim.message or "", call_id=verdict.call_id)
    return dataclasses.replace(verdict, claim=claim)


def _interpret(
    call: FunctionCall,
    name: str,
    proposed: dict[str, Any],
    timeout: float | None,
    validate_edits: Callable[[dict[str, Any]], None] | None,
) -> Verdict:
    decision = call.as_completed()
    if decision.approved is True:
        edits = decision.edited_kwargs
        if edits is None or edits == proposed:
            return Verdict("run", arguments=proposed, proposed=proposed, call_id=call.call_id)
        if validate_edits is not None:
            validate_edits(edits)
        return Verdict(
            "run", arguments=dict(edits), proposed=proposed, edited=True, call_id=call.call_id
        )
    if decision.expired:
        text = adapters.expired_message(name, call.spec.timeout_seconds or timeout)
        return Verdict("refuse", text=text, call_id=call.call_id)
    if decision.response is not None:
        return Verdict("answer", text=decision.response, call_id=call.call_id)
    option = decision.reject_option_name
    text = adapters.rejection_message(name, decision.comment, option)
    return Verdict("refuse", text=text, call_id=call.call_id)


def warn(message: str) -> None:
    """A line for the operator on stderr (stdout is the MCP stream)."""
    print(f"functionlayer-mcp: {message}", file=sys.stderr, flush=True)
