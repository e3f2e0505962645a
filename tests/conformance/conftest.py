"""Conformance suite: every adapter's test module subclasses
``functionlayer.testing.conformance.AdapterConformance``."""

import pytest

# The suite lives in the core wheel, outside the test tree: rewrite its asserts too.
pytest.register_assert_rewrite("functionlayer.testing.conformance")
