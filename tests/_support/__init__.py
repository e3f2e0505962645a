"""Helpers shared by the tests of every package: real servers, in-process apps, a real SMTP
server. Each package's own tests live beside it (``packages/<name>/tests``); the tests that cross
packages (security, executions, e2e, MCP) live in ``tests/``."""
