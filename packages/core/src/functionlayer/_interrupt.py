"""Ctrl-C while a guarded call waits for a person: the program stops at once, with one line.

Frameworks often run tools on worker threads, where Python's ``KeyboardInterrupt`` never
arrives: it hits the main thread, which unwinds through the framework with a traceback and then
waits for the worker still blocked at the terminal prompt or in a long-poll on the server. So a
``SIGINT`` handler (installed from the main thread; whenever no wait is open it passes the signal
to the handler that was there before, so the host application's own Ctrl-C handling is
unchanged) does, while waits are open:

- set :data:`stopping`, which every wait loop checks (and sleeps on), so no new wait starts;
- end each open wait: the terminal answers its prompt with "interrupted"; a request on a server
  is reported abandoned by its agent (best effort, within ``ABANDON_SECONDS``), which also
  releases the worker's long-poll at once;
- say one line (what was not run), silence what the unwinding frameworks print, raise
  ``SystemExit`` in the main thread, and end the process ``INTERRUPT_GRACE_SECONDS`` later if
  something still holds it.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

__all__ = ["INTERRUPTED_EXIT_STATUS", "exit_after", "stopping", "waiting"]

#: Exit status after Ctrl-C during a wait (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT_STATUS = 130
#: How long the interrupted program may take to unwind before it is ended regardless.
INTERRUPT_GRACE_SECONDS = 1.0
#: How long ending the open waits may take (telling a server they were abandoned).
ABANDON_SECONDS = 1.0

#: Set once Ctrl-C interrupted a wait: the process is stopping, no wait may go on.
stopping = threading.Event()


@dataclass
class _Wait:
    what: str
    """What the line says, e.g. ``"multiply was not run"``."""
    out: IO[str] | None
    """Where to say it (``None``: standard error)."""
    end: Callable[[], str]
    """Ends the wait; returns what to add to the line (e.g. what the server was told)."""


class _Waits:
    """The waits open right now, and the SIGINT handler that ends them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, _Wait] = {}
        self._next = 0
        self._installed = False
        self._previous: Any = signal.default_int_handler

    def install(self) -> None:
        """Install the handler; only possible (and done once) from the main thread."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
        except (ValueError, OSError):  # no signals here (e.g. an embedded interpreter)
            return
        self._installed = True

    def opened(self, wait: _Wait) -> int:
        with self._lock:
            self._next += 1
            self._open[self._next] = wait
            return self._next

    def closed(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        with self._lock:
            waits = list(self._open.values())
        if not waits:
            previous = self._previous
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt
            return
        stopping.set()
        notes = _end_all(waits)
        whats = list(dict.fromkeys(w.what for w in waits))
        line = f"\nInterrupted (Ctrl-C): {'; '.join(whats)}{notes}. Stopping.\n"
        out = waits[0].out or sys.stderr
        try:
            out.write(line)
            out.flush()
        except (OSError, ValueError):
            pass
        _quiet()
        _exit_soon()
        raise SystemExit(INTERRUPTED_EXIT_STATUS)


def _end_all(waits: list[_Wait]) -> str:
    """End every wait on a helper thread (a lock the interrupted main thread holds cannot
    stall the handler), for at most ``ABANDON_SECONDS``; what to add to the line."""
    notes: list[str] = []

    def run() -> None:
        for wait in waits:
            try:
                note = wait.end()
            except Exception:  # best effort: the program stops either way
                note = ""
            if note and note not in notes:
                notes.append(note)

    worker = threading.Thread(target=run, name="functionlayer-interrupt", daemon=True)
    worker.start()
    worker.join(ABANDON_SECONDS)
    if worker.is_alive():
        return "; the server could not be told, so the request stays pending there"
    return "".join(notes)


def _quiet() -> None:
    """The person asked to stop and has been told what happened: frameworks unwinding from the
    interruption (ControlFlow's Prefect logs a "crash" per task, LangGraph a traceback per
    thread) must not bury that line."""
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    try:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _exit_soon() -> None:
    """End the process if unwinding takes too long (a worker thread or framework holds it)."""
    exit_after(INTERRUPT_GRACE_SECONDS, INTERRUPTED_EXIT_STATUS)


def exit_after(seconds: float, status: int) -> None:
    """End the process with ``status`` in ``seconds`` unless it ended before (a daemon
    thread; standard output and error are flushed first)."""

    def end() -> None:
        time.sleep(seconds)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)

    threading.Thread(target=end, name="functionlayer-interrupted", daemon=True).start()


def _end_now() -> None:
    """Registered first, so it runs last of the exit handlers: once Ctrl-C stopped the
    program, end it now, without the interpreter's teardown of the frameworks' object graphs
    (seconds, for LangChain or CrewAI)."""
    if stopping.is_set():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(INTERRUPTED_EXIT_STATUS)


atexit.register(_end_now)

_WAITS = _Waits()


def install() -> None:
    """Install the SIGINT handler if this is the main thread (see the module docstring)."""
    _WAITS.install()


class Waiting:
    """``with Waiting(what, end):`` registers an open wait for the SIGINT handler while the
    block runs; ``end()`` ends it and returns what to add to the line. Installs the handler
    when entered on the main thread. (A class: entered once per wait of every guarded call.)"""

    __slots__ = ("_key", "_wait")

    def __init__(self, what: str, end: Callable[[], str], out: IO[str] | None = None) -> None:
        self._wait = _Wait(what, out, end)
        self._key = 0

    def __enter__(self) -> None:
        _WAITS.install()
        self._key = _WAITS.opened(self._wait)

    def __exit__(self, *exc_info: object) -> None:
        _WAITS.closed(self._key)


waiting = Waiting
