"""The gateway's TOML configuration: which upstream, which backend, and which tool calls to gate.

The file is validated strictly at start-up (unknown keys, empty tool lists and bad regular
expressions are errors), so a typo can never silently leave a dangerous tool ungated.

Rule semantics, in one place:

- a tool call is gated when at least one ``[[gate]]`` matches it;
- a gate matches when one of its ``tools`` patterns matches the tool's name (exact name or an
  :func:`fnmatch.fnmatchcase` glob) **and** every condition of its ``when`` table holds;
- a condition names an argument and one or more operators, all of which must hold. A dotted
  name (``"to.iban"``) walks nested objects only: the ``iban`` key inside the ``to`` object. An
  argument key literally named ``"to.iban"`` is never read as that value (the upstream acts on
  the nested one); when such a key is present the condition cannot be judged, so it holds;
- **when in doubt, gate**: a condition on a missing argument, or one that cannot be evaluated
  (``gt`` on a string, ``glob`` on a number, an ambiguous dotted name...), counts as holding.
  Only ``exists = false`` is satisfied by a missing argument and ``exists = true`` is not;
- every name and pattern in ``tools`` must match a tool the upstream lists when the gateway
  starts, and every ``when`` argument must be one that some of the gate's tools can take
  (:meth:`GatewayConfig.unknown_tools`), so a misspelt name cannot leave the call it meant
  ungated; the gateway gates tools the upstream adds after start-up by default.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ApprovalConfig",
    "Condition",
    "ConfigError",
    "Gate",
    "GatewayConfig",
    "UpstreamConfig",
    "load_config",
]

_MISSING: Any = object()
_UNSURE: Any = object()  # the argument cannot be told apart from a look-alike key: gate


class ConfigError(ValueError):
    """The configuration file is missing, not TOML, or does not describe a valid gateway."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """Operators on one argument; every operator given must hold."""

    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    glob: str | None = None
    regex: str | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _has_an_operator(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError(
                "a condition needs at least one operator (equals, not_equals, in, not_in, gt, "
                "gte, lt, lte, glob, regex, exists)"
            )
        return self

    def holds(self, value: Any) -> bool:
        """Whether the argument ``value`` (``_MISSING`` when absent) meets this condition."""
        if value is _UNSURE:
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return True  # NaN compares false with everything; JSON carries neither it nor inf
        if value is _MISSING:
            # Only an explicit "exists = false" is met by absence; with "exists = true" it is
            # not; anything else cannot be judged, so it holds (gate when in doubt).
            if "exists" in self.model_fields_set:
                return self.exists is False
            return True
        return all(self._check(name, value) for name in self.model_fields_set)

    def _check(self, operator: str, value: Any) -> bool:
        try:
            if operator == "exists":
                return self.exists is True
            if operator == "equals":
                return bool(value == self.equals)
            if operator == "not_equals":
                return bool(value != self.not_equals)
            if operator == "in_":
                return value in (self.in_ or [])
            if operator == "not_in":
                return value not in (self.not_in or [])
            if operator in ("gt", "gte", "lt", "lte"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return True  # not a number: cannot be judged, gate
                bound = getattr(self, operator)
                return bool(
                    {
                        "gt": value > bound,
                        "gte": value >= bound,
                        "lt": value < bound,
                        "lte": value <= bound,
                    }[operator]
                )
            if operator == "glob":
                return not isinstance(value, str) or fnmatch.fnmatchcase(value, self.glob or "")
            if operator == "regex":
                return not isinstance(value, str) or re.search(self.regex or "", value) is not None
        except Exception:  # an unjudgeable comparison (unhashable, odd types): gate
            return True
        return True  # unreachable for validated models; gate if ever reached


class Gate(_Strict):
    """One ``[[gate]]`` table."""

    tools: list[str] = Field(min_length=1)
    when: dict[str, Condition] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(default=None, gt=0)
    users: list[str] | None = None
    """Web-inbox users this gate's requests are routed to (overrides ``[approval] users``)."""

    @field_validator("tools", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("tools")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("tool names and patterns must not be empty")
        return value

    def matches_tool(self, name: str) -> bool:
        return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in self.tools)

    def matches(self, name: str, arguments: Mapping[str, Any]) -> bool:
        if not self.matches_tool(name):
            return False
        return all(cond.holds(_lookup(arguments, path)) for path, cond in self.when.items())


class ApprovalConfig(_Strict):
    """The ``[approval]`` table: how to reach a human."""

    backend: Literal["auto", "server", "terminal"] = "auto"
    timeout_seconds: float = Field(default=600.0, gt=0)
    users: list[str] | None = None
    tty: str = "/dev/tty"
    """The terminal device the terminal backend prompts on (stdin/stdout carry MCP)."""
    hold_seconds: float | None = Field(default=None, gt=0)
    """How long one ``tools/call`` is held open waiting for a person (server backend). After
    that the call answers "approval pending" with its handle, and the same call made again
    resumes the same approval. ``None``: held until the decision (or ``timeout_seconds``)."""


class UpstreamConfig(_Strict):
    """The ``[upstream]`` table: exactly one of ``command`` or ``url``."""

    command: list[str] | None = None
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            import shlex

            return shlex.split(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> UpstreamConfig:
        if self.command is not None and not self.command:
            raise ValueError("upstream command must not be empty")
        if self.command is not None and self.url is not None:
            raise ValueError("give the upstream either a command or a url, not both")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"upstream url must be http(s), got {self.url!r}")
        return self

    @property
    def configured(self) -> bool:
        return self.command is not None or self.url is not None


class GatewayConfig(_Strict):
    """A whole gateway configuration file."""

    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    gate: list[Gate] = Field(default_factory=list)

    def gate_for(self, name: str, arguments: Mapping[str, Any]) -> Gate | None:
        """The first gate that applies to this call, or ``None`` when it passes straight through."""
        for gate in self.gate:
            if gate.matches(name, arguments):
                return gate
        return None

    def mentions(self, name: str) -> bool:
        """Whether any gate could apply to the tool, whatever its arguments."""
        return any(gate.matches_tool(name) for gate in self.gate)

    def unknown_tools(self, listed: Mapping[str, Any]) -> str | None:
        """Why the gates do not fit ``listed`` (the upstream's tools: name -> inputSchema).

        A gate whose name or pattern matches none of the upstream's tools protects nothing, and
        the tool it was meant for passes ungated; a ``when`` argument that none of the gate's
        tools can take is never there, so its condition is judged on nothing (``exists = true``
        would never gate). Both are almost always typos: the gateway refuses to start and names
        the closest real names. ``None`` when every gate fits.
        """
        from functionlayer_mcp._schema import may_hold

        names = sorted(listed)
        problems: list[str] = []
        for index, gate in enumerate(self.gate):
            for pattern in gate.tools:
                if any(name == pattern or fnmatch.fnmatchcase(name, pattern) for name in names):
                    continue
                problems.append(
                    f"gate {index}: {pattern!r} matches no tool of the upstream"
                    + _closest(pattern, names)
                )
            matched = [name for name in names if gate.matches_tool(name)]
            for path in gate.when:
                if not matched or any(may_hold(listed[n], path.split(".")) for n in matched):
                    continue
                arguments = sorted(
                    {key for n in matched for key in _top_level_properties(listed[n])}
                )
                problems.append(
                    f"gate {index}: when {path!r} is not an argument of "
                    + ", ".join(map(repr, matched[:10]))
                    + _closest(path, arguments)
                )
        if not problems:
            return None
        shown = ", ".join(map(repr, names[:30])) + (" ..." if len(names) > 30 else "")
        return (
            "; ".join(problems)
            + f". The upstream lists: {shown or '(no tools)'}. A gate that names no tool (or an"
            " argument its tools do not have) leaves the call it was meant for ungated, so the"
            " gateway does not start."
        )


def _closest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def _top_level_properties(schema: Any) -> list[str]:
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return [str(key) for key in properties] if isinstance(properties, Mapping) else []


def load_config(path: str | Path | None) -> GatewayConfig:
    """Read and validate a gateway TOML file (``None``: an empty configuration, nothing gated)."""
    if path is None:
        return GatewayConfig()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(data, source=str(path))


def parse_config(data: Mapping[str, Any], *, source: str = "configuration") -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid {source}: {problems}") from exc


def _lookup(arguments: Mapping[str, Any], path: str) -> Any:
    """The argument at ``path``, walking nested objects one dotted part at a time.

    A key that itself contains a dot is never read as the value: ``{"target.region": ...}`` is
    not ``target.region``, whatever it holds (the upstream acts on the nested ``region``). When
    such a look-alike key is on the way, which value was meant is ambiguous: ``_UNSURE``, and
    the condition holds (gate when in doubt).
    """
    parts = path.split(".")
    value: Any = arguments
    for index, part in enumerate(parts):
        if not isinstance(value, Mapping):
            return _MISSING
        rest = parts[index:]
        if any(".".join(rest[:end]) in value for end in range(2, len(rest) + 1)):
            return _UNSURE
        if part not in value:
            return _MISSING
        value = value[part]
    return value
