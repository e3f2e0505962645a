"""The terminal's input side: lines read on a daemon thread (a prompt can time out without
losing later lines, and Ctrl-C answers it), and one typed argument checked against its schema."""

from __future__ import annotations

import queue
import threading
from typing import IO, Any

__all__ = ["Interrupted", "LineReader", "as_json", "parse_value", "reader_for"]

_EOF = object()
_INTERRUPT = object()


class Interrupted(Exception):
    """Ctrl-C at the prompt."""


class LineReader:
    """Reads lines on a daemon thread so a prompt can time out without losing later lines."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lines: queue.Queue[str | object] = queue.Queue()
        self._eof = False
        self._thread = threading.Thread(target=self._pump, name="functionlayer-stdin", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                line = self._stream.readline()
            except (OSError, ValueError):  # closed or unreadable stream: same as end of input
                line = ""
            if not line:
                self._lines.put(_EOF)
                return
            self._lines.put(line.rstrip("\r\n"))

    def interrupt(self) -> None:
        """Answer the pending (or next) ``readline`` with :class:`Interrupted`."""
        self._lines.put(_INTERRUPT)

    def readline(self, timeout: float | None) -> str | None:
        """The next line; ``None`` at end of input. Raises ``TimeoutError`` when none came in
        time, :class:`Interrupted` after Ctrl-C."""
        if self._eof:
            return None
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if item is _INTERRUPT:
            raise Interrupted
        if item is _EOF:
            self._eof = True
            return None
        assert isinstance(item, str)
        return item


_READERS: dict[int, LineReader] = {}
_READERS_LOCK = threading.Lock()


def reader_for(stream: IO[str]) -> LineReader:
    with _READERS_LOCK:
        reader = _READERS.get(id(stream))
        if reader is None or reader._stream is not stream:
            reader = _READERS[id(stream)] = LineReader(stream)
        return reader


def as_json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def parse_value(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """What the person typed for one argument, and why it does not fit its schema (or None).
    Checks the usual keywords (type, enum, bounds, lengths); the guard validates the whole call
    against the function's signature again before the body runs."""
    import json

    types = (schema or {}).get("type")
    kinds = [types] if isinstance(types, str) else list(types or [])
    raw = text.strip()
    if kinds == ["string"]:
        value: Any = text.rstrip("\r\n")
    else:
        try:
            value = json.loads(raw)
        except ValueError:
            if kinds and "string" not in kinds:
                return None, f"{raw!r} is not JSON of type {' or '.join(kinds)}"
            value = raw
    if kinds:
        fits = any(
            isinstance(value, _TYPES[k])
            and not (k in ("integer", "number") and isinstance(value, bool))
            for k in kinds
            if k in _TYPES
        ) or ("integer" in kinds and isinstance(value, float) and value.is_integer())
        if not fits:
            return None, f"expected {' or '.join(kinds)}, got {as_json(value)}"
    if schema is None:
        return value, None
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return None, "one of " + ", ".join(as_json(v) for v in enum)
    if isinstance(value, int | float) and not isinstance(value, bool):
        for key, word in (
            ("minimum", "at least"),
            ("maximum", "at most"),
            ("exclusiveMinimum", "more than"),
            ("exclusiveMaximum", "less than"),
        ):
            bound = schema.get(key)
            if not isinstance(bound, int | float):
                continue
            ok = {
                "minimum": value >= bound,
                "maximum": value <= bound,
                "exclusiveMinimum": value > bound,
                "exclusiveMaximum": value < bound,
            }[key]
            if not ok:
                return None, f"must be {word} {bound}"
    if isinstance(value, str):
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and len(value) < low:
            return None, f"at least {low} characters"
        if isinstance(high, int) and len(value) > high:
            return None, f"at most {high} characters"
    return value, None
