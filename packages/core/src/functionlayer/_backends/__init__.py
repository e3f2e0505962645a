"""Backends carry requests to humans and bring decisions back (httpx calls these transports)."""
