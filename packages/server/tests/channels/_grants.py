"""The functions the channels' grant tests propose, as the operator's policy sets them: one
that may not be granted, one that needs two approvals, one that is irreversible."""

from __future__ import annotations

GRANT_RULES = """
[default.functions.nogrant]
grants = false

[default.functions.twice]
approvals_required = 2

[default.functions.wipe]
irreversible = true
"""
