"""Reading email replies: parse raw MIME, find which of our messages it answers, and keep only
what the person wrote (no quoted thread, no signature)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser

__all__ = [
    "InboundError",
    "ParsedReply",
    "is_approval",
    "parse_reply",
    "strip_quoted",
]

MAX_REPLY_CHARS = 20_000
_MSGID = re.compile(r"<([^<>\s]+)>")
_APPROVE_WORDS = {"approve", "approved", "yes", "y"}

# Lines that start the quoted original in common mail clients; everything from here on is
# the thread, not the reply.
_QUOTE_START = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:original\ message|forwarded\ message)\s*-{2,}
      | _{10,}
      | (?:from|de|von)\s*:\s.+
      | sent\ from\ my\ .+
      | .*\bwrote\s*:\s*$
      | .*\ba\ écrit\s*:\s*$
      | .*\bschrieb\b.*:\s*$
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_ON_DATE = re.compile(r"^\s*on\s.+", re.IGNORECASE)


class InboundError(Exception):
    """The message cannot be used (unparseable, no sender, no text)."""


@dataclass
class ParsedReply:
    sender: str
    """The From address, lower-cased."""
    message_ids: list[str] = field(default_factory=list)
    """In-Reply-To first, then References (newest first), without angle brackets."""
    subject: str = ""
    text: str = ""
    """What the person wrote, quoted text and signature removed."""
    auto_reply: bool = False
    """An out-of-office or other automatic reply: never a decision."""


class _HtmlText(HTMLParser):
    """HTML to plain text, dropping quoted blocks (blockquote, Gmail/Outlook quote divs)."""

    _SKIP = frozenset({"script", "style", "head", "title", "blockquote"})
    _BREAK = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._stack: list[tuple[str, bool]] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(v or "" for k, v in attrs if k in ("class", "id"))
        skip = tag in self._SKIP or "gmail_quote" in classes or "divRplyFwdMsg" in classes
        if tag in self._BREAK:
            self.parts.append("\n")
        if tag in ("br", "img", "hr", "meta", "link", "input"):
            return  # void elements: no end tag to balance
        self._stack.append((tag, skip))
        if skip:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, skip = self._stack.pop()
            if skip:
                self._skipping -= 1
            if open_tag == tag:
                break
        if tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_to_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def strip_quoted(text: str) -> str:
    """The reply without the quoted original, quote headers or signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if line.rstrip() in ("--", "-- "):
            break  # signature delimiter
        if line.lstrip().startswith(">"):
            continue
        if _QUOTE_START.match(line):
            break
        # "On Mon, 1 Jan 2026 at 10:00, Alice <a@example.com>" + newline + "wrote:"
        nxt = lines[index + 1].strip().lower() if index + 1 < len(lines) else ""
        if _ON_DATE.match(line) and nxt.endswith("wrote:"):
            break
        kept.append(line.rstrip())
    while kept and not kept[0].strip():
        kept.pop(0)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)[:MAX_REPLY_CHARS]


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError) as exc:  # unknown charset, broken encoding
        raise InboundError(f"the reply's text could not be decoded: {exc}") from exc
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        return _html_to_text(content)
    return content


def _is_auto_reply(message: EmailMessage) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    precedence = str(message.get("Precedence", "")).strip().lower()
    return precedence in ("bulk", "junk", "auto_reply", "list")


def parse_reply(raw: bytes) -> ParsedReply:
    if not raw.strip():
        raise InboundError("the request body is empty: send the raw MIME message")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is for truly broken input
        raise InboundError(f"the message could not be parsed: {exc}") from exc
    assert isinstance(message, EmailMessage)
    try:
        from_header = str(message.get("From", ""))
        reply_to_header = str(message.get("In-Reply-To", ""))
        references_header = str(message.get("References", ""))
        subject = str(message.get("Subject", ""))
    except Exception as exc:  # malformed headers raise while being decoded
        raise InboundError(f"the message has malformed headers: {exc}") from exc
    addresses = email.utils.getaddresses([from_header])
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        raise InboundError("the message needs exactly one From address")
    sender = addresses[0][1].strip().lower()
    ids = _MSGID.findall(reply_to_header)
    ids += reversed(_MSGID.findall(references_header))
    unique = list(dict.fromkeys(ids))
    return ParsedReply(
        sender=sender,
        message_ids=unique,
        subject=subject,
        text=strip_quoted(_body_text(message)),
        auto_reply=_is_auto_reply(message),
    )


def is_approval(text: str) -> tuple[bool, str | None]:
    """(approves, comment): a first line of approve/approved/yes/y approves, the remaining
    lines (if any) become the approval comment."""
    lines = text.strip().split("\n")
    first = lines[0].strip().lower().rstrip(".!").strip() if lines else ""
    if first in _APPROVE_WORDS:
        rest = "\n".join(lines[1:]).strip()
        return True, rest or None
    return False, None
