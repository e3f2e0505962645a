"""Helpers shared by the test packages (one copy each)."""
