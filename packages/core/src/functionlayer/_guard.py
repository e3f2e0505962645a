"""A guarded function: builds the request, waits for the decision (claiming the one execution
an approval authorises), interprets it, runs the body and records how it ended. Every failure
to get a decision becomes a message for the LLM (fail closed)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from pydantic_core import to_jsonable_python

from functionlayer import _feedback
from functionlayer._channel_models import ContactChannel, ResponseOption
from functionlayer._context import current_call_id, current_group_id, current_request_context
from functionlayer._errors import ApprovalTimeoutError, InvalidEditError, MalformedResponseError
from functionlayer._execution import summarize
from functionlayer._ids import new_id
from functionlayer._log import log_report_failure, report_setup_mistake
from functionlayer._models import (
    DecisionKind,
    ExecutionReport,
    FunctionCall,
    FunctionCallSpec,
)
from functionlayer._requests import UNSET, RequestAPI, afetch_claimed, fetch_claimed

__all__ = ["Guard"]


class Guard:
    """One guarded function: builds the request, interprets the decision, runs the body."""

    def __init__(
        self,
        client: RequestAPI,
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
        self._parameters: dict[str, Any] | object | None = UNSET
        self._plain = _PlainParameters.of(self.signature)

    @property
    def parameters(self) -> dict[str, Any] | None:
        """The JSON schema sent with each request (computed once, as adapters compute it).

        ``None`` when the arguments cannot be edited by name (``*args``) or the signature has
        types with no JSON schema: the server then shows raw JSON and validates nothing."""
        if self._parameters is UNSET:
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
        if self._plain is not None:
            plain = self._plain.named(args, kwargs)
            if plain is not None:
                return plain
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
        return self.client.timeout if self.timeout is UNSET else self.timeout

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        named = self.named(args, kwargs)
        spec = self.spec(named)
        call_id = current_call_id() or new_id()
        # One approval, one execution: the body runs only under a granted claim, made by the
        # wait itself when the backend can (one round trip), else right after it.
        claim_id = new_id()
        try:
            fetched = fetch_claimed(
                self.client, spec, call_id, spec.timeout_seconds, (claim_id, self.client.run_id)
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
        call_id = current_call_id() or new_id()
        claim_id = new_id()
        try:
            fetched = await afetch_claimed(
                self.client, spec, call_id, spec.timeout_seconds, (claim_id, self.client.run_id)
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
            log_report_failure(self.name, call_id, exc)

    async def areport(self, call_id: str, claim_id: str, value: Any, *, raised: bool) -> None:
        try:
            await self.client.backend.areport_execution(
                call_id, self.execution_report(claim_id, value, raised=raised)
            )
        except Exception as exc:
            log_report_failure(self.name, call_id, exc)

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
            _feedback.reject_option_label(self.reject_options, decision.reject_option_name),
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

    def failure_message(self, exc: Exception, call_id: str) -> str:
        report_setup_mistake(exc)
        if isinstance(exc, InvalidEditError):
            return _feedback.invalid_edit_message(self.name, str(exc))
        if isinstance(exc, ApprovalTimeoutError):
            return _feedback.expired_message(self.name, self.effective_timeout())
        kept = call_id if self.client.backend.keeps_requests else None
        return _feedback.not_run_message(self.name, f"{type(exc).__name__}: {exc}", kept)


def _merged(call: FunctionCall) -> dict[str, Any]:
    """The arguments a decision approves: partial edits are merged into the proposal."""
    edited = call.status.edited_kwargs if call.status is not None else None
    if edited is None:
        return dict(call.spec.kwargs)
    return {**call.spec.kwargs, **edited}


class _NotRun(Exception):
    """Reported as the outcome of a claim whose body this agent refused to run (a decision
    the function does not accept, let through by the server)."""


class _PlainParameters:
    """A signature of plain parameters (no ``*args``, ``**kwargs``, positional-only or
    keyword-only ones), bound without ``inspect``: a call's arguments by name in the
    signature's order, defaults applied, as ``Signature.bind`` + ``apply_defaults`` give them.
    A call it cannot bind (a missing, unknown or repeated argument) is left to
    ``Signature.bind``, which raises the usual ``TypeError``."""

    def __init__(self, names: tuple[str, ...], defaults: dict[str, Any]) -> None:
        self.names = names
        self.defaults = defaults

    @classmethod
    def of(cls, signature: inspect.Signature) -> _PlainParameters | None:
        parameters = signature.parameters.values()
        if any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in parameters):
            return None
        defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        return cls(tuple(signature.parameters), defaults)

    def named(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        names = self.names
        if len(args) > len(names):
            return None
        named = dict(zip(names, args, strict=False))
        taken = 0
        for name in names[len(args) :]:
            if name in kwargs:
                named[name] = kwargs[name]
                taken += 1
            elif name in self.defaults:
                named[name] = self.defaults[name]
            else:
                return None
        return named if taken == len(kwargs) else None
