"""Session-wide test isolation: no network side effects, no writes to the real home directory."""

from __future__ import annotations

import gc
import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any framework is imported by a test module (collection imports them).
_HOME = tempfile.mkdtemp(prefix="functionlayer-test-home-")
_OFFLINE_ENV = {
    "HOME": _HOME,
    "XDG_DATA_HOME": os.path.join(_HOME, ".local", "share"),
    "PREFECT_HOME": os.path.join(_HOME, ".prefect"),
    "CONTROLFLOW_HOME_PATH": os.path.join(_HOME, ".controlflow"),
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_TESTING": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "CONTROLFLOW_ENABLE_DEFAULT_PRINT_HANDLER": "false",
    "LANGSMITH_TRACING": "false",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
}
os.environ.update(_OFFLINE_ENV)
# Tests choose their backend explicitly; a developer's own server settings must not leak in.
for _name in (
    "FUNCTIONLAYER_API_BASE",
    "FUNCTIONLAYER_API_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
):
    os.environ.pop(_name, None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def test_home() -> Iterator[str]:
    yield _HOME


@pytest.fixture(autouse=True)
def _collect_framework_clients(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect a framework test's garbage while no event loop runs.

    The openai SDK's async HTTP client closes itself in ``__del__`` by scheduling ``aclose()`` on
    whatever loop is running at that moment. Left to chance, that is a later test's loop, and the
    close fails there with "Event loop is closed" (its connections belong to a loop long gone).
    With no loop running, ``__del__`` does nothing and the sockets are simply released.
    """
    yield
    if not _framework_free(Path(request.node.path)):
        gc.collect()


_ROOT = Path(__file__).resolve().parent
_FRAMEWORK_FREE = (
    "packages/server/tests",
    "packages/core/tests",
    "tests/security",
    "tests/executions",
)


def _framework_free(path: Path) -> bool:
    """Tests that never run an agent framework (the server's, the core's, security and claims):
    the rest (e2e, conformance, MCP, the adapters' own and the root modules that run real agent
    loops) collect their garbage after each test."""
    relative = path.resolve().relative_to(_ROOT).as_posix()
    return relative.startswith(_FRAMEWORK_FREE)


# -- no network: every connection must stay on this machine ----------------------------------

_ATTEMPTS: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name would need DNS: that is network access
        return False


def _guard(address: object) -> None:
    if not _is_local(address):
        _ATTEMPTS.append(repr(address))
        raise OSError(f"network access is blocked in tests (attempted {address!r})")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _guard(address)
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _guard(address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _ATTEMPTS:
        print(f"\nFAILED: the tests attempted network access: {sorted(set(_ATTEMPTS))}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
