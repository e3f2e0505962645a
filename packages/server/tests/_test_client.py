"""The app in process behind Starlette's ``TestClient``, with its service: what the tests that
reach inside the server (the inbox's, the channels', the guarantees') build on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient


@dataclass
class InProcessApp:
    """The app in process and its service."""

    client: TestClient
    service: Any

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a service coroutine on the app's loop."""
        portal = self.client.portal
        assert portal is not None
        return portal.call(lambda: fn(*args, **kwargs))
