"""A wait that Ctrl-C ends: on a backend that keeps requests (a server), the wait is
registered with the SIGINT handler (``functionlayer._interrupt``) and, when the program stops,
the backend is told the request was abandoned; a decision that arrives as the program stops
still runs nothing.

A class rather than a generator context manager: it is entered once per wait of every guarded
call, and a generator's frames and ``contextlib`` wrapper cost more than the wait's own
bookkeeping."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType

from functionlayer import _interrupt
from functionlayer._backends._base import Backend
from functionlayer._errors import ConflictError, NoHumanAvailableError
from functionlayer._models import FunctionCall, HumanContact

__all__ = ["Stoppable", "check_not_stopping"]


class Stoppable:
    """``with Stoppable(backend, request):`` around one wait for ``request``."""

    __slots__ = ("_backend", "_end", "_request", "_wait")

    def __init__(self, backend: Backend, request: FunctionCall | HumanContact) -> None:
        self._backend = backend
        self._request = request
        self._wait: _interrupt.Waiting | None = None
        self._end: Callable[[], str] | None = None

    def __enter__(self) -> None:
        if not self._backend.keeps_requests:
            return
        request, backend = self._request, self._backend
        abandon: Callable[[str], object]
        if isinstance(request, FunctionCall):
            what, abandon = f"{request.spec.fn} was not run", backend.abandon_function_call
        else:
            what, abandon = "the question was not answered", backend.abandon_human_contact
        self._end = end = functools.partial(_abandon, abandon, request.call_id)
        self._wait = wait = _interrupt.Waiting(what, end)
        wait.__enter__()
        try:
            check_not_stopping()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wait, end = self._wait, self._end
        if wait is None or end is None:
            return
        self._wait = None
        wait.__exit__(kind, exc, tb)
        if kind is None:
            try:
                check_not_stopping()  # decided just before Ctrl-C: still nothing runs
            except KeyboardInterrupt:
                end()
                raise
        elif issubclass(kind, KeyboardInterrupt):  # the host's own Ctrl-C handling reached it
            end()


def check_not_stopping() -> None:
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
