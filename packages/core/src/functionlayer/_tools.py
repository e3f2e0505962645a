"""What an adapter needs to turn a function into a framework's native tool.

Adapters stay thin: name, description, argument model and JSON schema come from here, and
``run``/``arun`` validate the model's arguments and call the function under the tool call's id.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from functionlayer._context import call_id_scope, current_group_id

__all__ = ["ToolSpec", "tool_spec"]


@dataclass(frozen=True)
class ToolSpec:
    """A function described for an LLM tool interface."""

    fn: Callable[..., Any]
    name: str
    description: str
    is_async: bool
    _original: Callable[..., Any] = field(repr=False)

    @cached_property
    def args_model(self) -> type[BaseModel]:
        """A pydantic model of the parameters (unknown arguments are refused)."""
        return args_model_for(self._original, self.name)

    @cached_property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments object, as LLM tool definitions expect it."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        schema.setdefault("properties", {})
        return schema

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments; raises ``pydantic.ValidationError``."""
        model = self.args_model.model_validate(dict(arguments))
        return {name: getattr(model, name) for name in type(model).model_fields}

    def run(self, arguments: Mapping[str, Any], *, call_id: str | None = None) -> Any:
        kwargs = self.validate(arguments)
        with call_id_scope(call_id):
            if self.is_async:
                import asyncio

                return asyncio.run(self.fn(**kwargs))
            return self.fn(**kwargs)

    def announce(self, arguments: Mapping[str, Any], *, call_id: str) -> None:
        """Inside ``group_scope``: create a guarded function's request for these arguments
        without waiting, so a turn's calls are reviewable together before any of them waits
        (``run`` then finds the request under ``call_id``). Nothing for a plain function or
        invalid arguments (``run`` reports those)."""
        announcing = self._announcing(arguments)
        if announcing is not None:
            guard, kwargs = announcing
            guard.announce((), kwargs, call_id)

    async def aannounce(self, arguments: Mapping[str, Any], *, call_id: str) -> None:
        announcing = self._announcing(arguments)
        if announcing is None:
            return
        guard, kwargs = announcing
        if guard.is_async:
            await guard.aannounce((), kwargs, call_id)
        else:
            import asyncio

            await asyncio.to_thread(guard.announce, (), kwargs, call_id)

    def _announcing(self, arguments: Mapping[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        """The guard and valid arguments to announce; None when there is nothing to announce."""
        guard = getattr(self.fn, "__functionlayer_guard__", None)
        if guard is None or current_group_id() is None:
            return None
        try:
            return guard, self.validate(arguments)
        except ValueError:
            return None

    async def arun(self, arguments: Mapping[str, Any], *, call_id: str | None = None) -> Any:
        kwargs = self.validate(arguments)
        with call_id_scope(call_id):
            if self.is_async:
                return await self.fn(**kwargs)
            import asyncio

            # A sync guarded function blocks while a human decides: keep the loop free.
            # to_thread copies the context, so the call id goes with it.
            return await asyncio.to_thread(self.fn, **kwargs)


def tool_spec(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> ToolSpec:
    """Describe ``fn`` (guarded or plain) as an LLM tool."""
    if not callable(fn):
        raise TypeError(f"tool_spec() needs a function, got {fn!r}")
    original = inspect.unwrap(fn)
    tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    doc = description or inspect.getdoc(fn) or inspect.getdoc(original)
    return ToolSpec(
        fn=fn,
        name=tool_name,
        description=doc or f"Call {tool_name}.",
        is_async=inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(original),
        _original=original,
    )


_MODEL_CACHE: dict[Callable[..., Any], type[BaseModel]] = {}


def args_model_for(fn: Callable[..., Any], name: str | None = None) -> type[BaseModel]:
    """A pydantic model whose fields are ``fn``'s parameters (cached per function)."""
    cached = _MODEL_CACHE.get(fn)
    if cached is not None:
        return cached
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = getattr(fn, "__annotations__", {})
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.title() for part in (name or fn.__name__).split("_")) + "Arguments"
    model: type[BaseModel] = create_model(
        model_name,
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )
    _MODEL_CACHE[fn] = model
    return model
