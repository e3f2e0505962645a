"""Signed, expiring email links.

A link token is ``<payload>.<signature>``: the payload (base64url JSON) names the request, the
action (``approve`` or ``open``), the recipient it was sent to, its expiry and a random nonce;
the signature is HMAC-SHA256 over the payload with a key derived from the server's secret key.
Changing any byte of either half, or using it after its expiry, makes it invalid. Single use is
enforced by the channel (a durable row keyed by :func:`use_key`), not here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["LinkError", "LinkSigner", "LinkToken", "use_key"]

Action = Literal["approve", "open", "grant"]
_ACTIONS: tuple[str, ...] = ("approve", "open", "grant")
_KINDS: tuple[str, ...] = ("function_call", "human_contact")
MAX_TOKEN_LENGTH = 4096


class LinkError(Exception):
    """The link cannot be used; ``reason`` is safe to show to the person who clicked it."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


@dataclass(frozen=True)
class LinkToken:
    kind: str
    call_id: str
    action: str
    recipient: str
    expires_at: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def use_key(token: str) -> str:
    """The durable key recording that ``token`` was used (a hash: the token itself is a secret)."""
    return "email-link-used:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


class LinkSigner:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("email links need the server's secret_key")
        # A key used only for email links, so a signature here is never valid anywhere else.
        self._key = hmac.new(
            secret_key.encode("utf-8"), b"functionlayer-server email links v1", hashlib.sha256
        ).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(
        self, *, kind: str, call_id: str, action: Action, recipient: str, expires_at: float
    ) -> str:
        body = {
            "k": kind,
            "c": call_id,
            "a": action,
            "r": recipient,
            "e": int(expires_at),
            "n": secrets.token_hex(8),
        }
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, *, now: float) -> LinkToken:
        """The token's contents, or :class:`LinkError` when it is malformed, tampered or expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise LinkError("This link is malformed. Open the request in the inbox instead.")
        payload, mac = token.split(".")
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(payload).encode()):
            raise LinkError(
                "This link's signature is not valid: it was changed or not issued by this server."
            )
        try:
            body = json.loads(_unb64(payload))
            parsed = LinkToken(
                kind=str(body["k"]),
                call_id=str(body["c"]),
                action=str(body["a"]),
                recipient=str(body["r"]),
                expires_at=int(body["e"]),
                nonce=str(body["n"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise LinkError(
                "This link is malformed. Open the request in the inbox instead."
            ) from exc
        if parsed.action not in _ACTIONS or parsed.kind not in _KINDS:
            raise LinkError("This link is malformed. Open the request in the inbox instead.")
        if parsed.expires_at <= now:
            raise LinkError(
                "This link has expired. Nothing was decided; open the request in the inbox instead.",
                expired=True,
            )
        return parsed
