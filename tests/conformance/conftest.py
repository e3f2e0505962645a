"""Conformance suite: every adapter's test module subclasses ``suite.AdapterConformance``."""
