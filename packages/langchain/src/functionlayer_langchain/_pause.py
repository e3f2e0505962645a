"""What a LangGraph thread paused by ``HumanInTheLoopMiddleware`` waits on: its actions, each
tied to the model's tool call (see :mod:`functionlayer_langchain._hitl`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functionlayer import RequestContext

from functionlayer_langchain._context import context_for, messages_of

__all__ = ["Pause", "PendingAction", "flat_actions", "read_pause", "thread_id_of"]


@dataclass(frozen=True)
class PendingAction:
    """One action of a ``HumanInTheLoopMiddleware`` interrupt, tied to the model's tool call."""

    interrupt_id: str
    tool_call_id: str
    name: str
    args: dict[str, Any]
    description: str | None
    allowed_decisions: tuple[str, ...]
    context: RequestContext | None = None
    """What the conversation says about the call (the agent's words, for the approver)."""


@dataclass(frozen=True)
class Pause:
    thread_id: str
    interrupt_count: int
    actions: dict[str, list[PendingAction]]  # interrupt id -> its actions, in order
    per_call: frozenset[str]  # interrupts answered with one decision (interrupt_mode="per_call")


def flat_actions(pause: Pause) -> list[PendingAction]:
    return [action for actions in pause.actions.values() for action in actions]


def thread_id_of(config: Mapping[str, Any]) -> str:
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or str(thread_id) == "":
        raise ValueError(
            "config has no configurable.thread_id: HumanInTheLoopMiddleware needs a "
            "checkpointer and a thread id to pause and resume"
        )
    return str(thread_id)


def read_pause(snapshot: Any, config: Mapping[str, Any]) -> Pause:
    """The middleware's pending actions in a LangGraph ``StateSnapshot``, tied to tool call ids."""
    thread_id = thread_id_of(config)
    interrupts = tuple(getattr(snapshot, "interrupts", ()) or ())
    actions: dict[str, list[PendingAction]] = {}
    per_call: set[str] = set()
    values = getattr(snapshot, "values", None)
    messages = messages_of(values)
    for interrupt in interrupts:
        value = getattr(interrupt, "value", None)
        if not isinstance(value, Mapping):
            continue
        interrupt_id = str(interrupt.id)
        if value.get("type") == "tool_approval":  # interrupt_mode="per_call": one call each
            action = _per_call_action(interrupt_id, value, interrupt)
            context = context_for(messages, action.tool_call_id)
            actions[interrupt_id] = [dataclasses.replace(action, context=context)]
            per_call.add(interrupt_id)
            continue
        if "action_requests" not in value or "review_configs" not in value:
            continue  # someone else's interrupt
        actions[interrupt_id] = _actions_of(interrupt_id, value, messages)
    return Pause(
        thread_id=thread_id,
        interrupt_count=len(interrupts),
        actions=actions,
        per_call=frozenset(per_call),
    )


def _per_call_action(interrupt_id: str, value: Mapping[str, Any], interrupt: Any) -> PendingAction:
    """A ``ToolApprovalRequest``: the tool call id is in it, the allowed decisions are the
    interrupt's ``response_schema`` (a JSON schema, kept in the checkpoint)."""
    tool_call_id = value.get("tool_call_id")
    if not tool_call_id:
        raise ValueError(
            f"the model's tool call {value.get('name')} has no id: a decision could not be tied "
            "to it"
        )
    return PendingAction(
        interrupt_id=interrupt_id,
        tool_call_id=str(tool_call_id),
        name=str(value["name"]),
        args=dict(value["args"]),
        description=value.get("description") or None,
        allowed_decisions=_allowed_in(getattr(interrupt, "response_schema", None), value),
    )


def _allowed_in(schema: Any, value: Mapping[str, Any]) -> tuple[str, ...]:
    """The decision types a per-call ``response_schema`` accepts; refuses to guess otherwise."""
    if isinstance(schema, Mapping):
        mapping = (schema.get("discriminator") or {}).get("mapping")
        if isinstance(mapping, Mapping) and mapping:
            return tuple(str(kind) for kind in mapping)
        const = ((schema.get("properties") or {}).get("type") or {}).get("const")
        if isinstance(const, str):
            return (const,)
    raise ValueError(
        f"cannot tell which decisions the interrupt for {value.get('name')} "
        f"(tool call {value.get('tool_call_id')}) allows: its response_schema is {schema!r}"
    )


def _actions_of(
    interrupt_id: str, request: Mapping[str, Any], messages: Sequence[Any]
) -> list[PendingAction]:
    from langchain_core.messages import AIMessage

    action_requests = list(request["action_requests"])
    configs = {c["action_name"]: c for c in request["review_configs"]}
    last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    tool_calls = list(last_ai.tool_calls) if last_ai is not None else []

    # The middleware lists the gated tool calls of the last AIMessage in order: match in order.
    matched: list[int] = []
    position = 0
    for action in action_requests:
        while position < len(tool_calls) and not _same_call(tool_calls[position], action):
            position += 1
        if position == len(tool_calls):
            raise ValueError(
                f"the paused state has no tool call {action['name']} {action['args']!r} for the "
                "interrupt's action: the state and the interrupt do not belong together"
            )
        matched.append(position)
        position += 1
    for index, call in enumerate(tool_calls):
        if index not in matched and any(_same_call(call, action) for action in action_requests):
            raise ValueError(
                f"tool calls {call['name']} {call['args']!r} appear several times and only some "
                "are paused for review, so their tool call ids cannot be told apart; refusing "
                "to guess"
            )

    actions: list[PendingAction] = []
    for action, index in zip(action_requests, matched, strict=True):
        tool_call_id = tool_calls[index].get("id")
        if not tool_call_id:
            raise ValueError(
                f"the model's tool call {action['name']} has no id: a decision could not be "
                "tied to it"
            )
        config = configs.get(action["name"])
        if config is None:
            raise ValueError(f"the interrupt has no review config for {action['name']!r}")
        actions.append(
            PendingAction(
                interrupt_id=interrupt_id,
                tool_call_id=str(tool_call_id),
                name=action["name"],
                args=dict(action["args"]),
                description=action.get("description"),
                allowed_decisions=tuple(config["allowed_decisions"]),
                context=context_for(messages, str(tool_call_id)),
            )
        )
    return actions


def _same_call(tool_call: Mapping[str, Any], action: Mapping[str, Any]) -> bool:
    return bool(tool_call.get("name") == action["name"] and tool_call.get("args") == action["args"])
