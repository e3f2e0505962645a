"""The server's fixtures: real ``functionlayer-server serve`` processes and fresh PostgreSQL
databases (defined once in ``tests/_support/servers.py``, shared with the cross-package tests)."""

from tests._support.servers import (  # noqa: F401  (fixtures, registered by import)
    anyio_backend,
    module_postgres_url,
    module_server_factory,
    postgres_url,
    server,
    server_factory,
)
