"""The arguments of a call on its page: the faithful display (signature order, hidden
characters marked) and the edit form generated from the parameters' JSON schema, read back
into the edits a person made."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functionlayer.display import (
    WARNING,
    DisplayArgument,
    display_arguments,
    make_visible,
    ordered_names,
)

from ._views import pretty_json

__all__ = [
    "FIELD_PREFIX",
    "ArgumentsView",
    "EditField",
    "arguments_view",
    "edit_fields",
    "edits_from_form",
]


@dataclass
class ArgumentsView:
    """The arguments as shown (signature order, hidden characters marked), and the function's
    description (the agent's text too) with its hidden characters marked."""

    items: list[DisplayArgument]
    marked: bool
    warning: str = WARNING
    description: str = ""


def arguments_view(
    kwargs: dict[str, Any], schema: dict[str, Any] | None, description: str | None = None
) -> ArgumentsView:
    items = display_arguments(kwargs, schema)
    shown, marked = make_visible(description or "")
    return ArgumentsView(
        items=items, marked=marked or any(a.marked for a in items), description=shown
    )


@dataclass
class EditField:
    """One typed input of the edit form, built from the parameter's JSON schema."""

    name: str
    input: str  # integer, number, boolean, enum, text, textarea, json
    value: str = ""
    checked: bool = False
    options: list[tuple[str, str, bool]] = field(default_factory=list)
    required: bool = False
    nullable: bool = False
    description: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        """The name as shown (hidden characters marked); ``name`` is what the form sends."""
        return make_visible(self.name)[0]

    @property
    def has_choice(self) -> bool:
        """For an enum: whether one of its values is selected (else "(none)" is)."""
        return any(selected for _, _, selected in self.options)

    @property
    def form_name(self) -> str:
        return FIELD_PREFIX + self.name

    @property
    def dom_id(self) -> str:
        return "arg-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)


FIELD_PREFIX = "arg."


def _resolve(prop: Any, root: Mapping[str, Any] | None, depth: int = 0) -> Any:
    """Follow a local ``{"$ref": "#/$defs/Name"}`` (as pydantic writes enums and models)."""
    ref = prop.get("$ref") if isinstance(prop, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#/") or root is None or depth > 8:
        return prop
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    if not isinstance(target, dict):
        return prop
    merged = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return _resolve(merged, root, depth + 1)


def _base(prop: Any, root: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
    """The non-null alternative of a property's schema, and whether null is allowed."""
    prop = _resolve(prop, root)
    if not isinstance(prop, dict):
        return {}, False
    for key in ("anyOf", "oneOf"):
        branches = prop.get(key)
        if isinstance(branches, list):
            branches = [_resolve(b, root) for b in branches]
            real = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
            nullable = len(real) < len(branches)
            if len(real) == 1:
                merged = {k: v for k, v in prop.items() if k != key}
                return {**real[0], **merged}, nullable
            return {k: v for k, v in prop.items() if k != key}, nullable
    kind = prop.get("type")
    if isinstance(kind, list):
        others = [t for t in kind if t != "null"]
        return {**prop, "type": others[0] if len(others) == 1 else others}, "null" in kind
    return prop, False


def _input_for(prop: dict[str, Any], value: Any) -> str:
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return "enum"
    kind = prop.get("type")
    if kind == "boolean":
        return "boolean"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "string":
        if isinstance(value, str) and make_visible(value)[1]:
            # Edited as a JSON string, where hidden characters are visible \\u escapes: a text
            # input would hold them invisibly.
            return "json"
        return "textarea" if isinstance(value, str) and "\n" in value else "text"
    return "json"


def _as_text(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind in ("text", "textarea") and isinstance(value, str):
        return value
    if kind in ("integer", "number") and isinstance(value, int | float):
        return json.dumps(value)
    return pretty_json(value)


def edit_fields(
    kwargs: dict[str, Any],
    schema: dict[str, Any] | None,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[EditField]:
    """The typed inputs for editing; empty when the request has no schema (raw JSON then).
    ``form`` (what the person submitted) takes precedence over the proposed values."""
    if not schema or not isinstance(schema.get("properties"), dict):
        return []
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required") or [])
    errors = errors or {}
    fields: list[EditField] = []
    for name in ordered_names({**dict.fromkeys(properties), **kwargs}, schema):
        prop, nullable = _base(properties.get(name, {}), schema)
        value = kwargs.get(name, prop.get("default"))
        kind = _input_for(prop, value)
        submitted = None if form is None else form.get(FIELD_PREFIX + name)
        item = EditField(
            name=name,
            input=kind,
            required=name in required,
            nullable=nullable,
            description=make_visible(str(prop.get("description") or ""))[0],
            error=errors.get(name, ""),
        )
        if kind == "boolean":
            item.checked = (submitted is not None) if form is not None else value is True
        elif kind == "enum":
            chosen = submitted if submitted is not None else None
            for index, option in enumerate(prop["enum"]):
                selected = str(index) == chosen if chosen is not None else option == value
                label = make_visible(option if isinstance(option, str) else json.dumps(option))[0]
                item.options.append((str(index), label, selected))
        else:
            item.value = submitted if submitted is not None else _as_text(kind, value)
            if kind == "text" and "\n" in item.value:
                item.input = "textarea"
        fields.append(item)
    return fields


def _initial_choice(item: EditField) -> str:
    """The value an untouched ``<select>`` submits for an enum field."""
    return next((value for value, _, selected in item.options if selected), "")


def edits_from_form(
    kwargs: dict[str, Any], schema: dict[str, Any] | None, form: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The edited arguments the typed form asks for, and problems by argument name.

    Only the fields the person changed count as edits: each submitted field is compared with
    what the form showed before any change (rebuilt here from the proposal, not taken from
    the form), so an argument proposed as ``null`` stays ``null`` and a schema property the
    agent never proposed is not added from its ``default``. A field missing from the form is
    unchanged (except a checkbox, which browsers omit when it is unticked)."""
    edits: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for item in edit_fields(kwargs, schema):
        raw = form.get(item.form_name)
        if item.input == "boolean":
            if (raw is not None) != item.checked:
                edits[item.name] = raw is not None
            continue
        if not isinstance(raw, str):
            continue
        text = raw.replace("\r\n", "\n")
        if item.input == "enum":
            if text == _initial_choice(item):
                continue
        elif text in (item.value, "\n" + item.value) or (
            item.input != "textarea" and text.strip() == item.value.strip()
        ):
            # Unchanged (a naive client may keep the line break written after <textarea>).
            continue
        if item.input in ("text", "textarea"):
            edits[item.name] = text
            continue
        if not text.strip():
            if item.nullable:
                edits[item.name] = None
            elif item.name in kwargs:
                problems[item.name] = "is required"
            continue
        if item.input == "enum":
            prop, _ = _base((schema or {}).get("properties", {}).get(item.name, {}), schema)
            options = prop.get("enum") or []
            try:
                edits[item.name] = options[int(text)]
            except (ValueError, IndexError):
                problems[item.name] = "pick one of the listed values"
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            what = "a number" if item.input in ("integer", "number") else "valid JSON"
            problems[item.name] = f"must be {what} ({exc.msg})"
            continue
        edits[item.name] = value
    return edits, problems
