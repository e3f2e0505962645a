"""What every part of the lifecycle works with: the ledger (reads and the one write path), the
authority (who may see and decide) and the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from ._audit import AuditLog
from ._authority import Authority
from ._ledger import Ledger

__all__ = ["Part"]


@dataclass(eq=False)
class Part:
    """The base of each part (``Creator``, ``Decider``, ``Listing``, ...): the façade builds
    them all over the same three, so that no part holds a copy of another's state."""

    ledger: Ledger
    """Reads, waits and expiry, and every write to a request (the one compare-and-set)."""
    authority: Authority
    """Who may see and decide (with the directory and the operator's rules)."""
    audit: AuditLog
    """Audit entries that change no request (a refusal, a resumed run)."""
