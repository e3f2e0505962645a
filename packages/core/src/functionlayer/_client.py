"""The FunctionLayer client: guarded functions, human contact, and the lower-level request API."""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from functionlayer import _feedback, _interrupt
from functionlayer._backends._base import Backend
from functionlayer._context import (
    current_call_id,
    current_group_id,
    current_request_context,
    new_group_id,
)
from functionlayer._errors import (
    ApprovalTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    InvalidEditError,
    MalformedResponseError,
    NoHumanAvailableError,
)
from functionlayer._models import (
    DECISION_KINDS,
    ClaimedCall,
    CompletedFunctionCall,
    ContactChannel,
    DecisionKind,
    ExecutionClaim,
    ExecutionReport,
    FunctionCall,
    FunctionCallSpec,
    HumanContact,
    HumanContactSpec,
    ResponseOption,
)

__all__ = ["ApprovalMethod", "FunctionLayer"]

P = ParamSpec("P")
R = TypeVar("R")

_UNSET: Any = object()
_Claim = tuple[str, str | None]
"""A claim to make while waiting: (claim id, claimant)."""


class ApprovalMethod(enum.StrEnum):
    """Where approvals go when no ``backend`` is given."""

    TERMINAL = "terminal"
    CLOUD = "cloud"
    # The predecessor's names.
    CLI = "terminal"
    BACKEND = "cloud"


class FunctionLayer:
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
        self.run_id = run_id or f"{agent_name or 'agent'}-{_new_id()[:12]}"
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
            guard = _Guard(
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
        channel = contact_channel or self.contact_channel
        options = list(response_options) if response_options else None
        wait = self.timeout if timeout is _UNSET else timeout

        def contact_human(message: str) -> str:
            spec = HumanContactSpec(
                msg=message,
                channel=channel,
                response_options=options,
                timeout_seconds=wait,
                context=current_request_context(),
            )
            try:
                contact = self.fetch_human_response(spec, call_id=current_call_id())
            except Exception as exc:  # fail closed: the model hears that nobody answered
                _report_setup_mistake(exc)
                return _feedback.contact_failed_message(str(exc))
            return _contact_answer(contact)

        _describe_contact_tool(contact_human, channel)
        return contact_human

    def ahuman_as_tool(
        self,
        contact_channel: ContactChannel | None = None,
        response_options: Sequence[ResponseOption] | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> Callable[[str], Awaitable[str]]:
        """The async twin of :meth:`human_as_tool`."""
        channel = contact_channel or self.contact_channel
        options = list(response_options) if response_options else None
        wait = self.timeout if timeout is _UNSET else timeout

        async def contact_human(message: str) -> str:
            spec = HumanContactSpec(
                msg=message,
                channel=channel,
                response_options=options,
                timeout_seconds=wait,
                context=current_request_context(),
            )
            try:
                contact = await self.afetch_human_response(spec, call_id=current_call_id())
            except Exception as exc:  # fail closed, as above
                _report_setup_mistake(exc)
                return _feedback.contact_failed_message(str(exc))
            return _contact_answer(contact)

        _describe_contact_tool(contact_human, channel)
        return contact_human

    # ------------------------------------------------------- function calls, sync

    def create_function_call(
        self, spec: FunctionCallSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> FunctionCall:
        """Send a request without waiting. Idempotent per ``call_id``. Inside ``group_scope``
        a spec without a group id gets the scope's."""
        call = FunctionCall(
            run_id=run_id or self.run_id,
            call_id=call_id or _new_id(),
            spec=_grouped(spec, self.group_id),
        )
        return _check_same_request(call, self.backend.create_function_call(call))

    def get_function_call(self, call_id: str) -> FunctionCall:
        return self.backend.get_function_call(call_id)

    def create_function_calls(
        self,
        specs: Sequence[FunctionCallSpec],
        call_ids: Sequence[str | None] | None = None,
        *,
        group_id: str | None = None,
    ) -> list[FunctionCall]:
        """Send a model turn's requests as one review group (``group_id``, a new one unless
        given), without waiting: a person can review them on one page, and each keeps its own
        decision. Idempotent per call id."""
        group = group_id or new_group_id()
        ids = list(call_ids) if call_ids is not None else [None] * len(specs)
        if len(ids) != len(specs):
            raise ValueError("call_ids must have one entry per spec")
        return [
            self.create_function_call(spec.model_copy(update={"group_id": group}), call_id)
            for spec, call_id in zip(specs, ids, strict=True)
        ]

    def fetch_approval(
        self,
        spec: FunctionCallSpec,
        call_id: str | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> FunctionCall:
        """Send a request and block until it is decided (or expires: then it is rejected).

        Raises a :class:`~functionlayer.FunctionLayerError` when no decision can be had.
        """
        return self._fetch(spec, call_id, timeout, None).call

    def _fetch(
        self,
        spec: FunctionCallSpec,
        call_id: str | None,
        timeout: float | None,
        claim: _Claim | None,
    ) -> ClaimedCall:
        """``fetch_approval``; with ``claim`` (claim id, claimant), the wait also claims the
        execution when the call is approved as proposed (one round trip where the backend
        can: ``ClaimedCall.claim``)."""
        wait = self._timeout_for(spec, timeout)
        call = self.create_function_call(spec, call_id or current_call_id())
        deadline = None if wait is None else time.monotonic() + wait
        claimed: ExecutionClaim | None = None
        with self._stoppable(
            f"{spec.fn} was not run", self.backend.abandon_function_call, call.call_id
        ):
            while not call.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    call = _check_same_request(
                        call, self.backend.expire_function_call(call.call_id, _expiry_reason(wait))
                    )
                    break
                if claim is None:
                    got = self.backend.wait_function_call(call.call_id, remaining)
                else:
                    answer = self.backend.wait_and_claim_function_call(
                        call.call_id, remaining, claim[0], claimed_by=claim[1]
                    )
                    got, claimed = answer.call, answer.claim
                call = _check_same_request(call, got)
        return ClaimedCall(call=call, claim=claimed)

    # ------------------------------------------------------ function calls, async

    async def acreate_function_call(
        self, spec: FunctionCallSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> FunctionCall:
        call = FunctionCall(
            run_id=run_id or self.run_id,
            call_id=call_id or _new_id(),
            spec=_grouped(spec, self.group_id),
        )
        return _check_same_request(call, await self.backend.acreate_function_call(call))

    async def aget_function_call(self, call_id: str) -> FunctionCall:
        return await self.backend.aget_function_call(call_id)

    async def acreate_function_calls(
        self,
        specs: Sequence[FunctionCallSpec],
        call_ids: Sequence[str | None] | None = None,
        *,
        group_id: str | None = None,
    ) -> list[FunctionCall]:
        """The async twin of :meth:`create_function_calls`."""
        group = group_id or new_group_id()
        ids = list(call_ids) if call_ids is not None else [None] * len(specs)
        if len(ids) != len(specs):
            raise ValueError("call_ids must have one entry per spec")
        return [
            await self.acreate_function_call(spec.model_copy(update={"group_id": group}), call_id)
            for spec, call_id in zip(specs, ids, strict=True)
        ]

    async def afetch_approval(
        self,
        spec: FunctionCallSpec,
        call_id: str | None = None,
        *,
        timeout: float | None = _UNSET,
    ) -> FunctionCall:
        return (await self._afetch(spec, call_id, timeout, None)).call

    async def _afetch(
        self,
        spec: FunctionCallSpec,
        call_id: str | None,
        timeout: float | None,
        claim: _Claim | None,
    ) -> ClaimedCall:
        wait = self._timeout_for(spec, timeout)
        call = await self.acreate_function_call(spec, call_id or current_call_id())
        deadline = None if wait is None else time.monotonic() + wait
        claimed: ExecutionClaim | None = None
        with self._stoppable(
            f"{spec.fn} was not run", self.backend.abandon_function_call, call.call_id
        ):
            while not call.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    call = _check_same_request(
                        call,
                        await self.backend.aexpire_function_call(
                            call.call_id, _expiry_reason(wait)
                        ),
                    )
                    break
                if claim is None:
                    got = await self.backend.await_function_call(call.call_id, remaining)
                else:
                    answer = await self.backend.await_and_claim_function_call(
                        call.call_id, remaining, claim[0], claimed_by=claim[1]
                    )
                    got, claimed = answer.call, answer.claim
                call = _check_same_request(call, got)
        return ClaimedCall(call=call, claim=claimed)

    # ------------------------------------------------------------ human contacts

    def create_human_contact(
        self, spec: HumanContactSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> HumanContact:
        contact = HumanContact(
            run_id=run_id or self.run_id, call_id=call_id or _new_id(), spec=spec
        )
        return _check_same_contact(contact, self.backend.create_human_contact(contact))

    def get_human_contact(self, call_id: str) -> HumanContact:
        return self.backend.get_human_contact(call_id)

    def fetch_human_response(
        self, spec: HumanContactSpec, call_id: str | None = None, *, timeout: float | None = _UNSET
    ) -> HumanContact:
        """Ask a human and block until they answer (or the request expires)."""
        wait = self._timeout_for(spec, timeout)
        contact = self.create_human_contact(spec, call_id or current_call_id())
        deadline = None if wait is None else time.monotonic() + wait
        with self._stoppable(
            "the question was not answered", self.backend.abandon_human_contact, contact.call_id
        ):
            while not contact.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    contact = _check_same_contact(
                        contact,
                        self.backend.expire_human_contact(contact.call_id, _expiry_reason(wait)),
                    )
                    break
                contact = _check_same_contact(
                    contact, self.backend.wait_human_contact(contact.call_id, remaining)
                )
        return contact

    async def acreate_human_contact(
        self, spec: HumanContactSpec, call_id: str | None = None, *, run_id: str | None = None
    ) -> HumanContact:
        contact = HumanContact(
            run_id=run_id or self.run_id, call_id=call_id or _new_id(), spec=spec
        )
        return _check_same_contact(contact, await self.backend.acreate_human_contact(contact))

    async def aget_human_contact(self, call_id: str) -> HumanContact:
        return await self.backend.aget_human_contact(call_id)

    async def afetch_human_response(
        self, spec: HumanContactSpec, call_id: str | None = None, *, timeout: float | None = _UNSET
    ) -> HumanContact:
        wait = self._timeout_for(spec, timeout)
        contact = await self.acreate_human_contact(spec, call_id or current_call_id())
        deadline = None if wait is None else time.monotonic() + wait
        with self._stoppable(
            "the question was not answered", self.backend.abandon_human_contact, contact.call_id
        ):
            while not contact.completed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    contact = _check_same_contact(
                        contact,
                        await self.backend.aexpire_human_contact(
                            contact.call_id, _expiry_reason(wait)
                        ),
                    )
                    break
                contact = _check_same_contact(
                    contact, await self.backend.await_human_contact(contact.call_id, remaining)
                )
        return contact

    # ------------------------------------------------------------------ plumbing

    def _timeout_for(
        self, spec: FunctionCallSpec | HumanContactSpec, timeout: float | None
    ) -> float | None:
        if timeout is not _UNSET:
            return timeout
        if spec.timeout_seconds is not None:
            return spec.timeout_seconds
        return self.timeout

    @contextlib.contextmanager
    def _stoppable(
        self, what: str, abandon: Callable[[str], object], call_id: str
    ) -> Iterator[None]:
        """A wait on a backend that keeps requests (a server): Ctrl-C ends it and tells the
        backend the request was abandoned (see ``functionlayer._interrupt``)."""
        if not self.backend.keeps_requests:
            yield
            return
        end = functools.partial(_abandon, abandon, call_id)
        try:
            with _interrupt.waiting(what, end):
                _check_not_stopping()
                yield
            _check_not_stopping()  # decided just before Ctrl-C: still nothing runs
        except KeyboardInterrupt:  # the host's own Ctrl-C handling reached this wait
            end()
            raise

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()


# ---------------------------------------------------------------------- the guard


class _Guard:
    """One guarded function: builds the request, interprets the decision, runs the body."""

    def __init__(
        self,
        client: FunctionLayer,
        fn: Callable[..., Any],
        *,
        channel: ContactChannel | None,
        reject_options: list[ResponseOption] | None,
        timeout: float | None,
        when: Callable[..., Any] | None,
        redact: Callable[[Any], str] | None = None,
        decisions: list[DecisionKind] | None = None,
        irreversible: bool = False,
    ) -> None:
        self.client = client
        self.redact = redact
        self.irreversible = irreversible
        self.fn = fn
        self.name: str = getattr(fn, "__name__", type(fn).__name__)
        self.signature = inspect.signature(fn)
        self.channel = channel
        self.reject_options = reject_options
        self.timeout = timeout
        self.when = when
        self.description = inspect.getdoc(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._accepts_var_positional = any(
            p.kind is p.VAR_POSITIONAL for p in self.signature.parameters.values()
        )
        self._accepts_var_keyword = any(
            p.kind is p.VAR_KEYWORD for p in self.signature.parameters.values()
        )
        self.decisions = decisions
        self._parameters: dict[str, Any] | object | None = _UNSET

    @property
    def parameters(self) -> dict[str, Any] | None:
        """The JSON schema sent with each request (computed once, as adapters compute it).

        ``None`` when the arguments cannot be edited by name (``*args``) or the signature has
        types with no JSON schema: the server then shows raw JSON and validates nothing."""
        if self._parameters is _UNSET:
            self._parameters = None
            if not self._accepts_var_positional:
                from functionlayer._tools import tool_spec

                try:
                    schema = dict(tool_spec(self.fn, name=self.name).parameters)
                except Exception:  # arbitrary types: no JSON schema, raw JSON editing
                    schema = None
                if schema is not None and self._accepts_var_keyword:
                    schema.pop("additionalProperties", None)  # **kwargs takes any name
                self._parameters = schema
        return self._parameters  # type: ignore[return-value]

    def wrapper(self) -> Callable[..., Any]:
        fn = self.fn
        if self.is_async:

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                if self.when is not None:
                    verdict = self.when(**self.named(args, kwargs))
                    if inspect.isawaitable(verdict):
                        verdict = await verdict
                    if not verdict:
                        return await fn(*args, **kwargs)
                return await self.acall(args, kwargs)

            guarded_async.__functionlayer_guard__ = self  # type: ignore[attr-defined]
            return guarded_async

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.when is not None:
                verdict = self.when(**self.named(args, kwargs))
                if inspect.isawaitable(verdict):
                    close = getattr(verdict, "close", None)
                    if close is not None:
                        close()
                    raise TypeError(
                        f"the when= predicate of sync function {self.name} must not be async"
                    )
                if not verdict:
                    return fn(*args, **kwargs)
            return self.call(args, kwargs)

        guarded.__functionlayer_guard__ = self  # type: ignore[attr-defined]
        return guarded

    def named(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults applied: what the human is shown."""
        bound = self.signature.bind(*args, **kwargs)  # a malformed call raises TypeError here
        bound.apply_defaults()
        named: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                named.update(value)
            else:
                named[name] = list(value) if kind is inspect.Parameter.VAR_POSITIONAL else value
        return named

    def spec(self, named: dict[str, Any]) -> FunctionCallSpec:
        from pydantic_core import to_jsonable_python

        return FunctionCallSpec(
            fn=self.name,
            kwargs=to_jsonable_python(named, fallback=repr),
            channel=self.channel or self.client.contact_channel,
            reject_options=self.reject_options,
            timeout_seconds=self.effective_timeout(),
            description=self.description,
            parameters=self.parameters,
            allowed_decisions=self.decisions,
            irreversible=True if self.irreversible else None,
            context=current_request_context(),
            group_id=current_group_id(),
        )

    def effective_timeout(self) -> float | None:
        return self.client.timeout if self.timeout is _UNSET else self.timeout

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        named = self.named(args, kwargs)
        spec = self.spec(named)
        call_id = current_call_id() or _new_id()
        # One approval, one execution: the body runs only under a granted claim, made by the
        # wait itself when the backend can (one round trip), else right after it.
        claim_id = _new_id()
        try:
            fetched = self.client._fetch(
                spec, call_id, spec.timeout_seconds, (claim_id, self.client.run_id)
            )
            decided, claim = fetched.call, fetched.claim
            outcome = self.interpret(decided)
        except Exception as exc:  # any failure to get a decision, even a backend bug: fail closed
            return self.failure_message(exc, call_id)
        if isinstance(outcome, str):
            if claim is not None and claim.granted:  # claimed, yet not runnable here
                self.report(call_id, claim_id, _NotRun(outcome), raised=True)
            return outcome
        if claim is None:
            try:
                claim = self.client.backend.claim_execution(
                    call_id, claim_id, claimed_by=self.client.run_id
                )
            except Exception as exc:  # cannot record the execution: fail closed
                return self.claim_failure(exc, call_id)
        if not claim.granted:
            return _feedback.already_ran_message(self.name, call_id, claim.execution)
        try:
            # exactly the approved call (or the validated edits); its exceptions propagate
            result = self.fn(*args, **kwargs) if outcome is None else self.fn(**outcome)
        except Exception as exc:
            self.report(call_id, claim_id, exc, raised=True)
            raise
        self.report(call_id, claim_id, result, raised=False)
        if outcome is None:
            return result
        return _feedback.edited_message(self.name, spec.kwargs, _merged(decided), result)

    # -- one review per model turn: create the request now, decide and run later -----------

    def announce(self, args: tuple[Any, ...], kwargs: dict[str, Any], call_id: str) -> None:
        """Create this call's request without waiting (in the current group), so that a turn's
        calls are all pending, and reviewable together, before the first one waits. Best
        effort: the call itself creates (or finds) its request again and fails closed on its
        own. Skipped when ``when=`` may let the call run unguarded."""
        if self.when is not None:
            return
        try:
            self.client.create_function_call(self.spec(self.named(args, kwargs)), call_id)
        except Exception:  # the call itself reports it, failing closed
            return

    async def aannounce(self, args: tuple[Any, ...], kwargs: dict[str, Any], call_id: str) -> None:
        if self.when is not None:
            return
        try:
            await self.client.acreate_function_call(self.spec(self.named(args, kwargs)), call_id)
        except Exception:  # the call itself reports it, failing closed
            return

    async def acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        named = self.named(args, kwargs)
        spec = self.spec(named)
        call_id = current_call_id() or _new_id()
        claim_id = _new_id()
        try:
            fetched = await self.client._afetch(
                spec, call_id, spec.timeout_seconds, (claim_id, self.client.run_id)
            )
            decided, claim = fetched.call, fetched.claim
            outcome = self.interpret(decided)
        except Exception as exc:  # fail closed, as above
            return self.failure_message(exc, call_id)
        if isinstance(outcome, str):
            if claim is not None and claim.granted:
                await self.areport(call_id, claim_id, _NotRun(outcome), raised=True)
            return outcome
        if claim is None:
            try:
                claim = await self.client.backend.aclaim_execution(
                    call_id, claim_id, claimed_by=self.client.run_id
                )
            except Exception as exc:  # fail closed, as above
                return self.claim_failure(exc, call_id)
        if not claim.granted:
            return _feedback.already_ran_message(self.name, call_id, claim.execution)
        try:
            result = await (self.fn(*args, **kwargs) if outcome is None else self.fn(**outcome))
        except Exception as exc:
            await self.areport(call_id, claim_id, exc, raised=True)
            raise
        await self.areport(call_id, claim_id, result, raised=False)
        if outcome is None:
            return result
        return _feedback.edited_message(self.name, spec.kwargs, _merged(decided), result)

    def execution_report(self, claim_id: str, value: Any, *, raised: bool) -> ExecutionReport:
        from functionlayer._execution import summarize

        redact = self.redact if self.redact is not None else self.client.redact_outcome
        return ExecutionReport(
            claim_id=claim_id,
            outcome="raised" if raised else "returned",
            summary=summarize(value, raised=raised, redact=redact),
        )

    def report(self, call_id: str, claim_id: str, value: Any, *, raised: bool) -> None:
        """Record how the body ended. Best effort: the result still goes back to the LLM if
        the backend cannot be told (the execution then stays "outcome unknown")."""
        try:
            self.client.backend.report_execution(
                call_id, self.execution_report(claim_id, value, raised=raised)
            )
        except Exception as exc:
            _log_report_failure(self.name, call_id, exc)

    async def areport(self, call_id: str, claim_id: str, value: Any, *, raised: bool) -> None:
        try:
            await self.client.backend.areport_execution(
                call_id, self.execution_report(claim_id, value, raised=raised)
            )
        except Exception as exc:
            _log_report_failure(self.name, call_id, exc)

    def claim_failure(self, exc: Exception, call_id: str) -> str:
        return _feedback.claim_failed_message(self.name, f"{type(exc).__name__}: {exc}", call_id)

    def interpret(self, call: FunctionCall) -> str | dict[str, Any] | None:
        """``None``: run as proposed; a dict: run with these validated edits; a str: the tool result."""
        decision = call.as_completed()
        if decision.approved is True:
            merged = _merged(call)
            if decision.edited_kwargs is None or merged == call.spec.kwargs:
                self.check_allowed("approve")
                return None
            self.check_allowed("edit")
            return self.validate_edits(merged)
        if decision.expired:
            return _feedback.expired_message(self.name, call.spec.timeout_seconds)
        if decision.response is not None:
            return decision.response
        return _feedback.rejection_message(
            self.name,
            decision.comment,
            self.option_label(decision),
            by_policy=decision.responded_via == "policy",
        )

    def check_allowed(self, kind: DecisionKind) -> None:
        """Fail closed if a backend let through a decision this function does not accept."""
        if self.decisions is not None and kind not in self.decisions:
            error = InvalidEditError if kind == "edit" else MalformedResponseError
            raise error(
                f"the decision {kind!r} is not allowed for {self.name} "
                f"(allowed: {', '.join(self.decisions)})"
            )

    def validate_edits(self, edits: dict[str, Any]) -> dict[str, Any]:
        if self._accepts_var_positional:
            raise InvalidEditError(
                f"{self.name} takes *args, so its arguments cannot be edited by name"
            )
        from pydantic import ValidationError

        from functionlayer._tools import args_model_for

        try:
            model = args_model_for(self.fn, self.name).model_validate(edits)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidEditError(problems) from exc
        return {name: getattr(model, name) for name in type(model).model_fields}

    def option_label(self, decision: CompletedFunctionCall) -> str | None:
        name = decision.reject_option_name
        if not name:
            return None
        for option in self.reject_options or ():
            if option.name == name:
                return option.title or option.name
        return name

    def failure_message(self, exc: Exception, call_id: str) -> str:
        _report_setup_mistake(exc)
        if isinstance(exc, InvalidEditError):
            return _feedback.invalid_edit_message(self.name, str(exc))
        if isinstance(exc, ApprovalTimeoutError):
            return _feedback.expired_message(self.name, self.effective_timeout())
        kept = call_id if self.client.backend.keeps_requests else None
        return _feedback.not_run_message(self.name, f"{type(exc).__name__}: {exc}", kept)


# ------------------------------------------------------------------- helpers

_reported: set[str] = set()


def _report_setup_mistake(exc: BaseException) -> None:
    """A wrong token, URL or token kind is the developer's mistake, not a decision: besides the
    message the model gets, say it once per process at ERROR on the ``functionlayer`` logger
    (stderr when logging is not configured), with the fix the message carries."""
    if isinstance(exc, ConfigurationError):
        what = "is set up wrong"
    elif isinstance(exc, BackendUnavailableError) and exc.never_reached:
        what = "cannot reach its server"
    else:
        return
    key = f"{type(exc).__name__}:{getattr(exc, 'status_code', None)}"
    if key in _reported:
        return
    _reported.add(key)
    import logging

    logging.getLogger("functionlayer").error(
        "FunctionLayer %s, so no request reaches a person and guarded functions do not run: %s",
        what,
        exc,
    )


def _log_report_failure(fn: str, call_id: str, exc: Exception) -> None:
    import logging

    logging.getLogger("functionlayer").warning(
        "%s ran under call id %s but its outcome could not be recorded (%s: %s); it stays "
        "'started, outcome unknown' and will not run again",
        fn,
        call_id,
        type(exc).__name__,
        exc,
    )


def _check_not_stopping() -> None:
    if _interrupt.stopping.is_set():
        raise NoHumanAvailableError("interrupted (Ctrl-C): the program is stopping")


def _abandon(abandon: Callable[[str], object], call_id: str) -> str:
    """Tell the backend the agent stopped waiting; what the Ctrl-C line adds about it."""
    try:
        abandon(call_id)
    except ConflictError:
        return "; it had been decided just before"
    except Exception:
        return "; the server could not be told, so the request stays pending there"
    return "; the request is marked abandoned on the server"


def _new_id() -> str:
    import uuid  # deferred: uuid pulls in platform, a measurable share of the import cost

    return uuid.uuid4().hex


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


def _merged(call: FunctionCall) -> dict[str, Any]:
    """The arguments a decision approves: partial edits are merged into the proposal."""
    edited = call.status.edited_kwargs if call.status is not None else None
    if edited is None:
        return dict(call.spec.kwargs)
    return {**call.spec.kwargs, **edited}


def _expiry_reason(timeout: float | None) -> str:
    return f"no human answered within {timeout:g} seconds" if timeout else "the request expired"


class _NotRun(Exception):
    """Reported as the outcome of a claim whose body this agent refused to run (a decision
    the function does not accept, let through by the server)."""


def _grouped(spec: FunctionCallSpec, default: str | None) -> FunctionCallSpec:
    group = current_group_id() or default
    if group is None or spec.group_id is not None:
        return spec
    return spec.model_copy(update={"group_id": group})


def _check_same_request(sent: FunctionCall, got: FunctionCall) -> FunctionCall:
    """Refuse to act on a decision about a different call than the one we asked about."""
    if (
        got.call_id != sent.call_id
        or got.spec.fn != sent.spec.fn
        or _json_of(got.spec.kwargs) != _json_of(sent.spec.kwargs)
    ):
        raise ConflictError(
            f"the backend holds a different request under call id {sent.call_id!r} "
            f"({got.spec.fn} {got.spec.kwargs!r}); refusing to use its decision"
        )
    return got


def _json_of(kwargs: dict[str, Any]) -> str:
    """Arguments as the wire carries them: ``true``, ``1`` and ``1.0`` are different arguments
    (Python's ``==`` would call them equal and reuse another call's decision)."""
    import json

    from pydantic_core import to_jsonable_python

    return json.dumps(
        to_jsonable_python(kwargs, fallback=repr), sort_keys=True, separators=(",", ":")
    )


def _check_same_contact(sent: HumanContact, got: HumanContact) -> HumanContact:
    if got.call_id != sent.call_id or got.spec.msg != sent.spec.msg:
        raise ConflictError(
            f"the backend holds a different contact request under call id {sent.call_id!r}"
        )
    return got


def _contact_answer(contact: HumanContact) -> str:
    status = contact.status
    if status is None or not status.completed:
        return _feedback.contact_failed_message("the human has not answered")
    if status.expired or status.response is None:
        return _feedback.contact_failed_message(status.response or "the request expired unanswered")
    return status.response


def _describe_contact_tool(fn: Callable[..., Any], channel: ContactChannel | None) -> None:
    where = channel.describe() if channel is not None else "a human"
    if channel is None:
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
