"""The FunctionLayer client: guarded functions (``_guard``), human contact, and the lower-level
request API (``_requests``)."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from functionlayer import _feedback
from functionlayer._backends._base import Backend
from functionlayer._channel_models import ContactChannel, ResponseOption
from functionlayer._context import current_call_id, current_request_context
from functionlayer._guard import Guard
from functionlayer._ids import new_id
from functionlayer._log import report_setup_mistake
from functionlayer._models import (
    DECISION_KINDS,
    DecisionKind,
    HumanContact,
    HumanContactSpec,
)
from functionlayer._requests import UNSET, RequestAPI

__all__ = ["ApprovalMethod", "FunctionLayer"]

P = ParamSpec("P")
R = TypeVar("R")
_Tool = TypeVar("_Tool", Callable[[str], str], Callable[[str], Awaitable[str]])

_UNSET: Any = UNSET


class ApprovalMethod(enum.StrEnum):
    """Where approvals go when no ``backend`` is given."""

    TERMINAL = "terminal"
    CLOUD = "cloud"
    # The predecessor's names.
    CLI = "terminal"
    BACKEND = "cloud"


class FunctionLayer(RequestAPI):
    """Ask humans before functions run, and ask humans questions.

    ``FunctionLayer()`` uses the terminal unless ``FUNCTIONLAYER_API_BASE`` is set, in which case
    it talks to that server (token from ``FUNCTIONLAYER_API_TOKEN``). Pass ``backend=`` to use any
    other backend, e.g. :class:`functionlayer.testing.ScriptedHuman` in tests.

    ``timeout`` (seconds) bounds every wait for a human; a decorator's own ``timeout`` overrides it.
    On expiry the request is rejected for good.

    ``run_id`` is optional: a request is identified by its call id, function and arguments, so
    an agent restarted with a new run id resumes its pending or approved requests (adapters use
    the model's tool call ids as call ids). An approval authorises one execution: the body runs
    once, and a later call under the same call id gets "already ran" with the recorded outcome.
    ``redact_outcome(value) -> str`` turns what a guarded function returned (or the exception it
    raised) into the text recorded on the backend (default: its repr, at most 500 characters);
    a decorator's own ``redact`` overrides it.

    ``connect_timeout`` (seconds; default ``FUNCTIONLAYER_CONNECT_TIMEOUT``, else 5) bounds how
    long a call waits for a server that this process has never reached before it fails closed
    with the URL in the message; a server that answered once is retried for longer (a restart).
    """

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        approval_method: ApprovalMethod | str | None = None,
        api_base: str | None = None,
        api_token: str | None = None,
        run_id: str | None = None,
        agent_name: str | None = None,
        timeout: float | None = None,
        contact_channel: ContactChannel | None = None,
        redact_outcome: Callable[[Any], str] | None = None,
        connect_timeout: float | None = None,
        group_id: str | None = None,
    ) -> None:
        if backend is None:
            backend = _default_backend(approval_method, api_base, api_token, connect_timeout)
        elif connect_timeout is not None:
            raise ValueError(
                "connect_timeout applies to the server backend FunctionLayer builds; with "
                "backend=, pass it to that backend (e.g. HttpBackend(connect_timeout=...))"
            )
        self.backend = backend
        self.run_id = run_id or f"{agent_name or 'agent'}-{new_id()[:12]}"
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.timeout = timeout
        self.contact_channel = contact_channel
        self.redact_outcome = redact_outcome
        self.group_id = group_id
        """Every request this client creates is in this review group (unless its spec names
        one, or a ``group_scope`` is open): adapters use it for a turn's calls."""

    def __repr__(self) -> str:
        return f"FunctionLayer(backend={self.backend!r}, run_id={self.run_id!r})"

    # ----------------------------------------------------------------- decorator

    @overload
    def require_approval(self, contact_channel: Callable[P, R], /) -> Callable[P, R | str]: ...

    @overload
    def require_approval(
        self,
        contact_channel: ContactChannel | None = None,
        *,
        reject_options: Sequence[ResponseOption] | None = None,
        timeout: float | None = _UNSET,
        when: Callable[..., bool | Awaitable[bool]] | None = None,
        redact: Callable[[Any], str] | None = None,
        decisions: Sequence[DecisionKind] | None = None,
        irreversible: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R | str]]: ...

    def require_approval(
        self,
        contact_channel: ContactChannel | Callable[P, R] | None = None,
        *,
        reject_options: Sequence[ResponseOption] | None = None,
        timeout: float | None = _UNSET,
        when: Callable[..., bool | Awaitable[bool]] | None = None,
        redact: Callable[[Any], str] | None = None,
        decisions: Sequence[DecisionKind] | None = None,
        irreversible: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R | str]] | Callable[P, R | str]:
        """Guard a function: it runs only after a human approves that exact call.

        Both forms work: ``@fl.require_approval`` and ``@fl.require_approval(...)``.

        Rejected, expired or undecidable calls return a message for the LLM instead of running.
        ``when`` gets the call's named arguments; when it returns false the function runs
        without asking. An approval runs the body at most once (see :class:`FunctionLayer`);
        ``redact(value) -> str`` gives the text recorded about its result instead of its repr.
        ``decisions`` restricts what the person may do (``"approve"``,
        ``"reject"``, ``"edit"``, ``"respond"``; default all): the server refuses the others
        and channels do not offer them. ``irreversible=True`` marks a function that cannot be
        undone: approving it takes a deliberate second step in every channel (the server
        refuses an approval without it).
        """
        if timeout is not _UNSET and timeout is not None and timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        allowed = _allowed_decisions(decisions)
        bare: Callable[P, R] | None = None
        channel: ContactChannel | None = None
        if isinstance(contact_channel, ContactChannel) or contact_channel is None:
            channel = contact_channel
        elif callable(contact_channel):  # used bare: @fl.require_approval above the function
            bare = contact_channel
        else:
            raise TypeError(
                "require_approval() takes a ContactChannel (or nothing), got "
                f"{type(contact_channel).__name__}: use @fl.require_approval or "
                "@fl.require_approval(ContactChannel(...))"
            )

        def decorator(fn: Callable[P, R]) -> Callable[P, R | str]:
            if not callable(fn) or isinstance(fn, ContactChannel):
                raise TypeError(
                    f"require_approval(...) decorates a function, got {type(fn).__name__}"
                )
            guard = Guard(
                self,
                fn,
                channel=channel,
                reject_options=list(reject_options) if reject_options else None,
                timeout=timeout,
                when=when,
                redact=redact,
                decisions=allowed,
                irreversible=irreversible,
            )
            return guard.wrapper()

        if bare is not None:
            return decorator(bare)
        return decorator

    # ------------------------------------------------------------- human as tool

    def human_as_tool(
        self,
        contact_channel: ContactChannel | None = None,
        response_options: Sequence[ResponseOption] | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> Callable[[str], str]:
        """A tool function ``(message) -> answer`` that asks a human and returns their answer."""
        tool = _ContactTool(self, contact_channel, response_options, timeout)

        def contact_human(message: str) -> str:
            try:
                contact = self.fetch_human_response(tool.spec(message), call_id=current_call_id())
            except Exception as exc:  # fail closed: the model hears that nobody answered
                return _contact_failed(exc)
            return _contact_answer(contact)

        return tool.described(contact_human)

    def ahuman_as_tool(
        self,
        contact_channel: ContactChannel | None = None,
        response_options: Sequence[ResponseOption] | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> Callable[[str], Awaitable[str]]:
        """The async twin of :meth:`human_as_tool`."""
        tool = _ContactTool(self, contact_channel, response_options, timeout)

        async def contact_human(message: str) -> str:
            spec = tool.spec(message)
            try:
                contact = await self.afetch_human_response(spec, call_id=current_call_id())
            except Exception as exc:  # fail closed, as above
                return _contact_failed(exc)
            return _contact_answer(contact)

        return tool.described(contact_human)


# ------------------------------------------------------------------- helpers


def _allowed_decisions(decisions: Sequence[DecisionKind] | None) -> list[DecisionKind] | None:
    if decisions is None:
        return None
    if isinstance(decisions, str):
        raise TypeError('decisions must be a list such as ["approve", "reject"], not a string')
    chosen = list(dict.fromkeys(decisions))
    unknown = [d for d in chosen if d not in DECISION_KINDS]
    if unknown or not chosen:
        raise ValueError(
            f"decisions must be a non-empty list of {', '.join(DECISION_KINDS)}; got {decisions!r}"
        )
    return chosen


def _contact_answer(contact: HumanContact) -> str:
    status = contact.status
    if status is None or not status.completed:
        return _feedback.contact_failed_message("the human has not answered")
    if status.expired or status.response is None:
        return _feedback.contact_failed_message(status.response or "the request expired unanswered")
    return status.response


class _ContactTool:
    """What a human-as-tool function asks with: its channel, options and wait."""

    def __init__(
        self,
        client: FunctionLayer,
        contact_channel: ContactChannel | None,
        response_options: Sequence[ResponseOption] | None,
        timeout: float | None,
    ) -> None:
        self.channel = contact_channel or client.contact_channel
        self.options = list(response_options) if response_options else None
        self.wait = client.timeout if timeout is _UNSET else timeout

    def spec(self, message: str) -> HumanContactSpec:
        return HumanContactSpec(
            msg=message,
            channel=self.channel,
            response_options=self.options,
            timeout_seconds=self.wait,
            context=current_request_context(),
        )

    def described(self, fn: _Tool) -> _Tool:
        """``fn``, named and documented for the model after where it asks."""
        where = self.channel.describe() if self.channel is not None else "a human"
        if self.channel is None:
            fn.__name__ = "contact_human"
        else:
            slug = re.sub(r"[^a-z0-9]+", "_", where.lower()).strip("_")[:48]
            fn.__name__ = f"contact_human_via_{slug}"
        fn.__qualname__ = fn.__name__
        fn.__doc__ = (
            f"Contact {where} and wait for their answer. Use this to ask for a decision, a "
            "clarification or information only a human has. The message must be self-contained: "
            "say what you need and why. Returns the human's answer as text."
        )
        return fn


def _contact_failed(exc: Exception) -> str:
    report_setup_mistake(exc)
    return _feedback.contact_failed_message(str(exc))


def _default_backend(
    method: ApprovalMethod | str | None,
    api_base: str | None,
    api_token: str | None,
    connect_timeout: float | None = None,
) -> Backend:
    base = api_base or os.environ.get("FUNCTIONLAYER_API_BASE")
    if method is None:
        method = ApprovalMethod.CLOUD if base else ApprovalMethod.TERMINAL
        if not base and (api_token or os.environ.get("FUNCTIONLAYER_API_TOKEN")):
            import logging

            logging.getLogger("functionlayer").warning(
                "FUNCTIONLAYER_API_TOKEN is set but FUNCTIONLAYER_API_BASE is not: using the "
                "terminal; set FUNCTIONLAYER_API_BASE (e.g. http://127.0.0.1:8080/functionlayer/v1) "
                "to send approvals to a FunctionLayer server"
            )
    method = ApprovalMethod(method)
    if method is ApprovalMethod.CLOUD:
        from functionlayer._backends._http import HttpBackend

        return HttpBackend(base_url=base, token=api_token, connect_timeout=connect_timeout)
    from functionlayer._backends._terminal import TerminalBackend

    return TerminalBackend()
