"""The outcome line of every chat channel (Discord, Slack, Teams): the same words, with the
channel's icons, emphasis and escaping (``_outcome`` renders it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from functionlayer_server._outcome import OutcomeTable

__all__ = ["OutcomeMarks", "chat_outcomes"]


@dataclass(frozen=True)
class OutcomeMarks:
    """A chat channel's marks: an icon per kind of outcome ("" for none) and its bold."""

    approved: str = ""
    rejected: str = ""
    answered: str = ""
    ended: str = ""
    """Expired or abandoned."""
    bold: str = ""


def chat_outcomes(marks: OutcomeMarks, text: Callable[[str], str] = str) -> OutcomeTable:
    """The outcome table in ``marks``; ``text`` escapes what agents and persons wrote."""

    def bold(words: str) -> str:
        return f"{marks.bold}{words}{marks.bold}"

    def head(icon: str, words: str) -> str:
        return f"{icon} {bold(words)}" if icon else bold(words)

    return OutcomeTable(
        lines={
            "pending": "Pending",
            "approved": head(marks.approved, "Approved")
            + " by {who}{edited}{approvals}{comment_suffix}",
            "rejected": head(marks.rejected, "Rejected") + "{option} by {who}: {comment}",
            "answered": head(marks.answered, "Answered") + " by {who}: {response}",
            "answered_instead": head(marks.answered, "Answered instead") + " by {who}: {response}",
            "expired": head(marks.ended, "Expired") + "{comment_suffix}",
            "abandoned": head(marks.ended, "Abandoned")
            + " (the agent stopped waiting){comment_suffix}",
        },
        text=text,
        strong=bold,
    )
