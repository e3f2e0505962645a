"""A guarded call running in a thread of its own, the way an agent makes it, for the channel tests
that drive a real server process and approve from the channel's side meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from functionlayer import call_id_scope


class Running:
    """A guarded call running in a thread, as an agent would make it."""

    def __init__(self, fn: Callable[..., Any], call_id: str, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                with call_id_scope(call_id):
                    self.result = fn(**kwargs)
            except BaseException as exc:  # reported by .get()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def get(self, timeout: float = 20.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the guarded call is still waiting"
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def waiting(self) -> bool:
        return self.thread.is_alive()
