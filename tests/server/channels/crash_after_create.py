"""``functionlayer-server`` with a crash point, for kill -9 tests: run as
``python crash_after_create.py serve`` (the CLI's own arguments and environment).

With ``FL_TEST_CRASH_AFTER_CREATE`` set, the process SIGKILLs itself the moment the store's
transaction that creates a request has committed: before the service does anything else (no
listener runs, no job is scheduled after the fact, no answer is sent). Whatever the request
still needs afterwards must have been stored by that transaction."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from functionlayer_server._cli import main
from functionlayer_server._store import RequestRecord, Store

CRASH_ENV = "FL_TEST_CRASH_AFTER_CREATE"

_insert_request = Store.insert_request


async def _insert_then_die(self: Store, *args: Any, **kwargs: Any) -> tuple[RequestRecord, bool]:
    stored, created = await _insert_request(self, *args, **kwargs)
    if created and os.environ.get(CRASH_ENV):
        os.kill(os.getpid(), signal.SIGKILL)
    return stored, created


if __name__ == "__main__":
    Store.insert_request = _insert_then_die  # type: ignore[method-assign]
    sys.exit(main())
