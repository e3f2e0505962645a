"""The model's tool call id read from a framework's own frame, for frameworks that hand a tool
only its arguments (CrewAI, ControlFlow).

The id is a local of the framework function running the tool call; :class:`CallIdFinder` walks
up from the tool to the first frame running one of those functions (known by their code
objects) and reads the id there. Framework-agnostic: the adapter names the code objects, how to
read the id from that frame's locals, and what to warn (once per process) when no id is found:
the call still works under a fresh id, but a retried turn asks the human again.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from types import CodeType, FrameType
from typing import Any

__all__ = ["MAX_FRAMES", "CallIdFinder", "installed_version"]

MAX_FRAMES = 40
"""Deepest frame walk when looking for the framework's tool-call function."""


@dataclass(eq=False, repr=False)
class CallIdFinder:
    """Finds the model's tool call id in the frame of a framework function in ``codes``."""

    codes: frozenset[CodeType]
    """The code objects of the framework functions that hold the id while a tool runs."""
    read: Callable[[Mapping[str, Any]], object]
    """Reads the id from such a frame's locals (anything but a non-empty str: no id)."""
    _: KW_ONLY
    warning: type[Warning]
    message: str
    """The warning's text; ``{version}`` in it is the installed version of ``distribution``
    (the framework), looked up when the warning is first given."""
    distribution: str
    warned: bool = field(default=False, init=False)
    """Set once the missing-id warning was given (it is given once per process)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def find(self, depth: int = 1) -> str | None:
        """The tool call id the model gave the call the framework is running now, if any.
        ``depth`` is the frame to start from (1: the caller)."""
        frame: FrameType | None = sys._getframe(depth)
        for _ in range(MAX_FRAMES):
            if frame is None:
                return None
            if frame.f_code in self.codes:
                call_id = self.read(frame.f_locals)
                return call_id if isinstance(call_id, str) and call_id else None
            frame = frame.f_back
        return None

    def find_or_warn(self, depth: int = 1, *, stacklevel: int = 1) -> str | None:
        """:meth:`find`, warning once per process when the id is missing. ``depth`` and
        ``stacklevel`` count from the caller (1: the caller itself)."""
        call_id = self.find(depth + 1)
        if call_id is None:
            with self._lock:
                first, self.warned = not self.warned, True
            if first:
                text = self.message.format(version=installed_version(self.distribution))
                warnings.warn(text, self.warning, stacklevel=stacklevel + 1)
        return call_id


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``(unknown version)``."""
    try:
        return version(distribution)
    except PackageNotFoundError:  # imported from a source tree
        return "(unknown version)"
