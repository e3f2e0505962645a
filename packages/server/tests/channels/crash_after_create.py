"""``functionlayer-server`` with crash points, for kill -9 tests: run as
``python crash_after_create.py serve`` (the CLI's own arguments and environment).

With ``FL_TEST_CRASH_AFTER_CREATE`` set, the process SIGKILLs itself the moment the store's
transaction that creates a request has committed; with ``FL_TEST_CRASH_AFTER_DECIDE``, the
moment the compare-and-set that decides (or expires) a request has committed. Either way
before the service does anything else (no listener runs, no job is scheduled after the fact,
no answer is sent): whatever the change still needs must have been stored by that
transaction."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from functionlayer_server._cli import main
from functionlayer_server._store import RequestRecord, Store

CRASH_ENV = "FL_TEST_CRASH_AFTER_CREATE"
CRASH_DECIDE_ENV = "FL_TEST_CRASH_AFTER_DECIDE"

_insert_request = Store.insert_request
_update_request = Store.update_request


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def _insert_then_die(self: Store, *args: Any, **kwargs: Any) -> tuple[RequestRecord, bool]:
    stored, created = await _insert_request(self, *args, **kwargs)
    if created and os.environ.get(CRASH_ENV):
        _die()
    return stored, created


async def _update_then_die(self: Store, *args: Any, **kwargs: Any) -> bool:
    changed = await _update_request(self, *args, **kwargs)
    if changed and kwargs.get("completed") and os.environ.get(CRASH_DECIDE_ENV):
        _die()
    return changed


if __name__ == "__main__":
    Store.insert_request = _insert_then_die  # type: ignore[method-assign]
    Store.update_request = _update_then_die  # type: ignore[method-assign]
    sys.exit(main())
