"""LangChain's own human-in-the-loop pause, answered by FunctionLayer.

``langchain.agents.middleware.HumanInTheLoopMiddleware`` pauses a LangGraph agent with an
interrupt whose value is a ``HITLRequest``: ``action_requests`` (name, args, description) and
``review_configs`` (``allowed_decisions`` per action), and waits for
``Command(resume={"decisions": [...]})``, one decision per action, in order. This module turns
each action into a FunctionLayer request and each FunctionLayer decision back into a LangChain
decision. Who may decide, quorums, expiry and the audit trail are FunctionLayer's (core and
server); nothing here decides anything.

Three facts shape it:

- ``ActionRequest`` carries no tool call id. The ids are on the last ``AIMessage`` of the
  paused state, and the middleware builds its actions from that message's tool calls in order,
  so the actions are matched to the tool calls in order by name and arguments. Identical calls
  the middleware skipped (``when=``) would make that ambiguous: then we refuse.
- The call id is derived from the tool call id (``hitl:<tool_call_id>``) and the run id from
  the LangGraph thread id, so another process resuming the same thread from its checkpoint finds
  the same requests and the same decisions.
- A decision the review config does not allow is never produced: :class:`DecisionNotAllowedError`
  is raised instead and the agent stays paused (fail closed, nothing runs).
- One approval, one execution: an approve or edit decision is handed to the middleware only
  after the execution of that call is claimed (``functionlayer.adapters.claim``). Resuming the
  same checkpoint twice therefore runs the tool once: the second ``Command`` rejects the call
  with a message saying it already ran (and a claim that cannot be recorded rejects it too).

``interrupt_mode="per_call"`` is simpler: each ``ToolApprovalRequest`` carries its tool call id,
its allowed decisions are the interrupt's ``response_schema``, and each is answered with one
decision keyed by interrupt id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from functionlayer import (
    ConflictError,
    ContactChannel,
    FunctionCall,
    FunctionCallSpec,
    FunctionLayer,
    FunctionLayerError,
    NotFoundError,
    adapters,
    group_id_for,
)

from functionlayer_langchain._pause import Pause, PendingAction, flat_actions, read_pause

if TYPE_CHECKING:
    from langgraph.types import Command

__all__ = ["DecisionNotAllowedError", "HITLBridge", "PendingAction"]

ALL_DECISIONS = ("approve", "edit", "reject", "respond")
SOURCE = "langchain.HumanInTheLoopMiddleware"


class DecisionNotAllowedError(FunctionLayerError):
    """The human's decision is not among the ``allowed_decisions`` of the middleware's review
    config for that action. Nothing was resumed: the agent stays paused and the tool did not run."""


class StateGraph(Protocol):
    """What the bridge needs of a compiled LangGraph graph (``create_agent`` returns one)."""

    def get_state(self, config: Any) -> Any: ...

    async def aget_state(self, config: Any) -> Any: ...


class HITLBridge:
    """Answer ``HumanInTheLoopMiddleware`` interrupts with FunctionLayer decisions.

    >>> bridge = HITLBridge(fl)
    >>> result = agent.invoke({"messages": [...]}, config)
    >>> while agent.get_state(config).interrupts:
    ...     result = agent.invoke(bridge.resume(agent, config), config)

    - :meth:`resume` sends every pending action and blocks until each is decided.
    - :meth:`submit` sends them and returns at once; later, maybe in another process with the
      same checkpointer, :meth:`collect` returns the ``Command`` once all are decided
      (``None`` while any is pending).
    - ``a``-prefixed twins for async code.

    ``channel`` and ``timeout`` (seconds; default: the client's) go into every request.
    """

    def __init__(
        self,
        fl: FunctionLayer,
        *,
        channel: ContactChannel | None = None,
        timeout: float | None = None,
        call_id_prefix: str = "hitl:",
    ) -> None:
        self.timeout = adapters.checked_timeout(timeout) or fl.timeout
        self.fl = fl
        self.channel = channel
        self.call_id_prefix = call_id_prefix

    def __repr__(self) -> str:
        return f"HITLBridge({self.fl!r}, call_id_prefix={self.call_id_prefix!r})"

    # -- what is pending -------------------------------------------------------------------

    def pending(self, graph: StateGraph, config: Mapping[str, Any]) -> list[PendingAction]:
        """The actions the thread is paused on (empty when it is not paused by the middleware)."""
        pause = read_pause(graph.get_state(config), config)
        return [action for actions in pause.actions.values() for action in actions]

    def call_id(self, action: PendingAction) -> str:
        """The FunctionLayer call id of an action: derived from the model's tool call id."""
        return f"{self.call_id_prefix}{action.tool_call_id}"

    def spec(self, action: PendingAction, thread_id: str) -> FunctionCallSpec:
        """The request sent for an action. Deterministic, so a resend is idempotent."""
        description = action.description or ""
        if set(action.allowed_decisions) != set(ALL_DECISIONS):
            allowed = ", ".join(action.allowed_decisions)
            description = f"{description}\n\nAllowed decisions: {allowed}.".lstrip()
        return FunctionCallSpec(
            fn=action.name,
            kwargs=action.args,
            channel=self.channel or self.fl.contact_channel,
            timeout_seconds=self.timeout,
            description=description or None,
            context=action.context,
            state={
                "source": SOURCE,
                "thread_id": thread_id,
                "tool_call_id": action.tool_call_id,
                "allowed_decisions": list(action.allowed_decisions),
            },
        )

    # -- sync ------------------------------------------------------------------------------

    def submit(self, graph: StateGraph, config: Mapping[str, Any]) -> list[FunctionCall]:
        """Send a request for every pending action (idempotent) and return without waiting."""
        pause = self._pause(graph.get_state(config), config)
        client = self._client(pause)
        return [
            client.create_function_call(self.spec(action, pause.thread_id), self.call_id(action))
            for action in flat_actions(pause)
        ]

    def collect(self, graph: StateGraph, config: Mapping[str, Any]) -> Command[Any] | None:
        """The ``Command`` answering the pause, or ``None`` while a decision is pending.

        Never waits. Sends any request that was not sent yet (a crash between pause and submit).
        """
        pause = self._pause(graph.get_state(config), config)
        client = self._client(pause)
        calls: list[FunctionCall] = []
        for action in flat_actions(pause):
            try:
                call = client.get_function_call(self.call_id(action))
            except NotFoundError:
                call = client.create_function_call(
                    self.spec(action, pause.thread_id), self.call_id(action)
                )
            calls.append(_same_action(action, call))
        if not all(call.completed for call in calls):
            return None
        return self._command(pause, self._claim(client, _decisions(pause, calls)))

    def resume(self, graph: StateGraph, config: Mapping[str, Any]) -> Command[Any]:
        """Send every pending action, wait until each is decided, return the ``Command``.

        Raises a :class:`~functionlayer.FunctionLayerError` when no decision can be had, and
        :class:`DecisionNotAllowedError` for a decision the review config does not allow; the
        agent then stays paused.
        """
        pause = self._pause(graph.get_state(config), config)
        client = self._client(pause)
        actions = flat_actions(pause)
        for action in actions:  # every question goes out before we wait for the first answer
            client.create_function_call(self.spec(action, pause.thread_id), self.call_id(action))
        calls = [
            client.fetch_approval(
                self.spec(action, pause.thread_id), self.call_id(action), timeout=self.timeout
            )
            for action in actions
        ]
        return self._command(pause, self._claim(client, _decisions(pause, calls)))

    # -- async -----------------------------------------------------------------------------

    async def apending(self, graph: StateGraph, config: Mapping[str, Any]) -> list[PendingAction]:
        pause = read_pause(await graph.aget_state(config), config)
        return [action for actions in pause.actions.values() for action in actions]

    async def asubmit(self, graph: StateGraph, config: Mapping[str, Any]) -> list[FunctionCall]:
        pause = self._pause(await graph.aget_state(config), config)
        client = self._client(pause)
        return [
            await client.acreate_function_call(
                self.spec(action, pause.thread_id), self.call_id(action)
            )
            for action in flat_actions(pause)
        ]

    async def acollect(self, graph: StateGraph, config: Mapping[str, Any]) -> Command[Any] | None:
        pause = self._pause(await graph.aget_state(config), config)
        client = self._client(pause)
        calls: list[FunctionCall] = []
        for action in flat_actions(pause):
            try:
                call = await client.aget_function_call(self.call_id(action))
            except NotFoundError:
                call = await client.acreate_function_call(
                    self.spec(action, pause.thread_id), self.call_id(action)
                )
            calls.append(_same_action(action, call))
        if not all(call.completed for call in calls):
            return None
        return self._command(pause, await self._aclaim(client, _decisions(pause, calls)))

    async def aresume(self, graph: StateGraph, config: Mapping[str, Any]) -> Command[Any]:
        pause = self._pause(await graph.aget_state(config), config)
        client = self._client(pause)
        actions = flat_actions(pause)
        for action in actions:
            await client.acreate_function_call(
                self.spec(action, pause.thread_id), self.call_id(action)
            )
        calls = await asyncio.gather(
            *(
                client.afetch_approval(
                    self.spec(action, pause.thread_id), self.call_id(action), timeout=self.timeout
                )
                for action in actions
            )
        )
        return self._command(pause, await self._aclaim(client, _decisions(pause, list(calls))))

    # -- plumbing --------------------------------------------------------------------------

    def _pause(self, snapshot: Any, config: Mapping[str, Any]) -> Pause:
        pause = read_pause(snapshot, config)
        if not pause.actions:
            raise ValueError(
                f"thread {pause.thread_id!r} is not paused by HumanInTheLoopMiddleware: "
                "there is nothing to decide"
            )
        return pause

    def _client(self, pause: Pause) -> FunctionLayer:
        # The same backend, under a run id derived from the thread: a process resuming the
        # thread later finds the very requests this one sent.
        # A pause's actions are one model turn: one review group (derived from their ids).
        ids = [self.call_id(action) for action in flat_actions(pause)]
        return FunctionLayer(
            backend=self.fl.backend,
            run_id=f"langgraph-thread:{pause.thread_id}",
            timeout=self.timeout,
            contact_channel=self.fl.contact_channel,
            group_id=group_id_for(ids) if len(ids) > 1 else None,
        )

    def _claim(self, client: FunctionLayer, decided: list[_Decided]) -> list[dict[str, Any]]:
        """Claim the execution of every approved action (one approval, one execution): an
        approval already used, or one whose claim cannot be recorded, becomes a rejection."""
        return [
            item.decision
            if not item.runs
            else _claimed(item, adapters.claim(client, item.call_id, item.action.name))
            for item in decided
        ]

    async def _aclaim(self, client: FunctionLayer, decided: list[_Decided]) -> list[dict[str, Any]]:
        return [
            item.decision
            if not item.runs
            else _claimed(item, await adapters.aclaim(client, item.call_id, item.action.name))
            for item in decided
        ]

    def _command(self, pause: Pause, decisions: Sequence[dict[str, Any]]) -> Command[Any]:
        from langgraph.types import Command

        decided = iter(decisions)
        answers: dict[str, dict[str, Any]] = {}
        for interrupt_id, actions in pause.actions.items():
            chosen = [next(decided) for _ in actions]
            if interrupt_id in pause.per_call:
                [answers[interrupt_id]] = chosen  # per call: the decision itself, by id
            else:
                answers[interrupt_id] = {"decisions": chosen}
        if pause.interrupt_count == 1 and not pause.per_call:
            # The only interrupt: the plain form the middleware documents.
            [answer] = answers.values()
            return Command(resume=answer)
        return Command(resume=answers)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decided:
    action: PendingAction
    call_id: str
    decision: dict[str, Any]

    @property
    def runs(self) -> bool:
        return self.decision["type"] in ("approve", "edit")


def _decisions(pause: Pause, calls: Sequence[FunctionCall]) -> list[_Decided]:
    """Every action's LangChain decision, in order; raises :class:`DecisionNotAllowedError`
    before anything is claimed when one is not allowed."""
    return [
        _Decided(action, call.call_id, _decision(action, call))
        for action, call in zip(flat_actions(pause), calls, strict=True)
    ]


def _claimed(item: _Decided, claim: adapters.Claim) -> dict[str, Any]:
    if claim.proceed:
        return item.decision
    if "reject" not in item.action.allowed_decisions:
        raise DecisionNotAllowedError(
            f"{claim.message} HumanInTheLoopMiddleware allows only "
            f"{list(item.action.allowed_decisions)} for {item.action.name} (tool call "
            f"{item.action.tool_call_id}), so this cannot be told to the model as a rejection: "
            "nothing was resumed and the agent stays paused."
        )
    return {"type": "reject", "message": claim.message}


def _same_action(action: PendingAction, call: FunctionCall) -> FunctionCall:
    """Refuse a stored request that is not about this very action."""
    if call.spec.fn != action.name or call.spec.kwargs != action.args:
        raise ConflictError(
            f"the backend holds a different request under call id {call.call_id!r} "
            f"({call.spec.fn} {call.spec.kwargs!r}); refusing to use its decision"
        )
    return call


def _decision(action: PendingAction, call: FunctionCall) -> dict[str, Any]:
    """The LangChain decision for a decided FunctionLayer request, if the config allows it."""
    done = call.as_completed()
    decision: dict[str, Any]
    if done.approved:
        edits = done.edited_kwargs
        if edits is None or edits == action.args:
            decision = {"type": "approve"}
        else:
            decision = {
                "type": "edit",
                "edited_action": {"name": action.name, "args": dict(edits)},
            }
    elif done.response is not None and not done.expired:
        decision = {"type": "respond", "message": done.response}
    else:
        if done.expired:
            reason = done.comment or "the request expired"
            message: str | None = f"no human decided in time ({reason}); the tool was not run"
        else:
            message = done.comment or done.reject_option_name
        decision = {"type": "reject"}
        if message:
            decision["message"] = message
    kind = decision["type"]
    if kind not in action.allowed_decisions:
        who = done.responded_by or ("expiry" if done.expired else "the human")
        raise DecisionNotAllowedError(
            f"{who} decided {kind!r} for {action.name} (tool call {action.tool_call_id}, "
            f"FunctionLayer call {call.call_id}), but HumanInTheLoopMiddleware allows only "
            f"{list(action.allowed_decisions)} for it. Nothing was resumed: the agent stays "
            "paused and the tool did not run."
        )
    return decision
