"""A scripted human: answers each request from a script and records every request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from functionlayer._backends._memory import InMemoryBackend
from functionlayer._errors import BackendUnavailableError, FunctionLayerError
from functionlayer._models import FunctionCall, HumanContact

__all__ = [
    "Answer",
    "ScriptExhaustedError",
    "ScriptedHuman",
    "approve",
    "edit",
    "fail",
    "never",
    "reject",
    "respond",
]


@dataclass(frozen=True)
class Answer:
    """One scripted answer. Build it with :func:`approve`, :func:`reject`, :func:`edit`,
    :func:`respond`, :func:`never` or :func:`fail`."""

    kind: str
    comment: str | None = None
    option: str | None = None
    edited_kwargs: dict[str, Any] | None = None
    text: str | None = None
    error: BaseException | None = field(default=None, compare=False)


def approve(comment: str | None = None) -> Answer:
    """Approve the call as proposed."""
    return Answer("approve", comment=comment)


def reject(feedback: str | None = None, *, option: str | None = None) -> Answer:
    """Reject, with feedback for the LLM (and optionally a reject option's name)."""
    return Answer("reject", comment=feedback, option=option)


def edit(**kwargs: Any) -> Answer:
    """Approve with these arguments changed (a partial edit: the others stay as proposed)."""
    return Answer("edit", edited_kwargs=kwargs)


def respond(text: str) -> Answer:
    """Answer instead of running the function; or answer a human-contact question."""
    return Answer("respond", text=text)


def never() -> Answer:
    """Never answer (the request stays pending until it expires)."""
    return Answer("never")


def fail(error: BaseException | None = None) -> Answer:
    """Make the backend fail when the request is sent (default: the server is unreachable)."""
    return Answer(
        "fail",
        error=error or BackendUnavailableError("scripted failure: the server is unreachable"),
    )


Request: TypeAlias = FunctionCall | HumanContact
Script: TypeAlias = Iterable[Answer] | Mapping[str, Answer] | Callable[[Request], Answer]


class ScriptExhaustedError(FunctionLayerError):
    """The script has no answer for a request."""


class ScriptedHuman(InMemoryBackend):
    """A backend whose human follows a script, for testing agents' approval paths offline.

    ``script`` is a list of answers taken in order, a mapping from call id to answer (decide by
    call id, never by position), or a function of the request returning an answer. Every request
    is recorded in :attr:`requests` (function calls and human contacts, in arrival order).

    >>> human = ScriptedHuman([approve(), reject("too expensive")])
    >>> fl = FunctionLayer(backend=human)
    """

    def __init__(self, script: Script = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._by_call_id: Mapping[str, Answer] | None = None
        self._decide: Callable[[Request], Answer] | None = None
        self._queue: list[Answer] = []
        if isinstance(script, Mapping):
            self._by_call_id = dict(script)
        elif callable(script):
            self._decide = script
        else:
            self._queue = list(script)
        self.requests: list[Request] = []

    def __repr__(self) -> str:
        return f"ScriptedHuman(requests={len(self.requests)})"

    def then(self, *answers: Answer) -> ScriptedHuman:
        """Append answers to a list script."""
        with self._lock:
            self._queue.extend(answers)
        return self

    @property
    def function_call_requests(self) -> list[FunctionCall]:
        return [r for r in self.requests if isinstance(r, FunctionCall)]

    @property
    def human_contact_requests(self) -> list[HumanContact]:
        return [r for r in self.requests if isinstance(r, HumanContact)]

    def _next_answer(self, request: Request) -> Answer:
        with self._lock:
            if self._by_call_id is not None:
                try:
                    return self._by_call_id[request.call_id]
                except KeyError:
                    raise ScriptExhaustedError(
                        f"the scripted human has no answer for call id {request.call_id!r}"
                    ) from None
            if self._decide is not None:
                return self._decide(request)
            if not self._queue:
                raise ScriptExhaustedError(
                    f"the scripted human has no answer left for request {request.call_id!r}"
                )
            return self._queue.pop(0)

    def _answer_for(self, request: Request) -> Answer:
        """The script's answer to a new request; a scripted failure is raised here (before
        the request is stored), else the request is recorded."""
        answer = self._next_answer(request)
        if answer.kind == "fail":
            assert answer.error is not None
            raise answer.error
        return answer

    def create_function_call(self, call: FunctionCall) -> FunctionCall:
        if self._known(self._calls, call.call_id):
            return super().create_function_call(call)  # idempotent: no new question, no new answer
        answer = self._answer_for(call)
        self.requests.append(super().create_function_call(call))
        decision = _decision(answer, call)
        if decision is not None:
            self.respond(call.call_id, responded_by="scripted", **decision)
        return self.get_function_call(call.call_id)

    def create_human_contact(self, contact: HumanContact) -> HumanContact:
        if self._known(self._contacts, contact.call_id):
            return super().create_human_contact(contact)
        answer = self._answer_for(contact)
        self.requests.append(super().create_human_contact(contact))
        if answer.kind == "respond":
            assert answer.text is not None
            self.answer(contact.call_id, answer.text, responded_by="scripted")
        elif answer.kind != "never":
            raise ScriptExhaustedError(
                f"a human contact needs respond(text) or never(), the script gave {answer.kind}()"
            )
        return self.get_human_contact(contact.call_id)

    def _known(self, stored: Mapping[str, object], call_id: str) -> bool:
        with self._changed:
            return call_id in stored


def _decision(answer: Answer, call: FunctionCall) -> dict[str, Any] | None:
    """How the scripted human decides ``call`` (``respond``'s keywords); None: not (yet)."""
    if answer.kind == "approve":
        return {"approved": True, "comment": answer.comment}
    if answer.kind == "edit":
        # Partial edits merge into the proposal, as the server stores them.
        return {
            "approved": True,
            "edited_kwargs": {**call.spec.kwargs, **(answer.edited_kwargs or {})},
        }
    if answer.kind == "reject":
        return {"approved": False, "comment": answer.comment, "reject_option_name": answer.option}
    if answer.kind == "respond":
        return {"approved": False, "comment": answer.text, "response": answer.text}
    return None
