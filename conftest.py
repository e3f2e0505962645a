"""Session-wide test isolation: no network side effects, no writes to the real home directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

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
