"""Signed session cookies and CSRF tokens for the inbox.

The cookie holds ``{"u": session id | None, "csrf": token, "iat": unix}`` as base64 JSON plus an
HMAC-SHA256 over it keyed by ``settings.secret_key``; a forged or altered cookie is ignored. The
session id names a server-side session (``fl_sessions``, see ``_accounts``): logout, a password
change or disabling the person ends it at once, and its expiry is enforced by the server, not
by the cookie's max-age.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["COOKIE_NAME", "DEVICE_COOKIE_NAME", "DeviceCodec", "Session", "SessionCodec"]

COOKIE_NAME = "functionlayer_session"
SESSION_MAX_AGE = 12 * 3600
DEVICE_COOKIE_NAME = "functionlayer_device"
DEVICE_MAX_AGE = 180 * 24 * 3600


@dataclass
class Session:
    sid: str | None
    """The server-side session id once logged in; None before."""
    csrf: str
    issued_at: int

    @classmethod
    def fresh(cls, sid: str | None = None) -> Session:
        # A new CSRF token on every login too, so a token seen before login is useless after.
        return cls(sid=sid, csrf=secrets.token_urlsafe(32), issued_at=int(time.time()))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _SignedCookie:
    """A base64 JSON payload plus an HMAC-SHA256 over it, under a key derived for one purpose
    only (so the same secret can sign other things safely), valid for ``max_age`` seconds from
    its ``iat``. A forged, altered, malformed or too old cookie reads as None."""

    def __init__(self, secret_key: str, purpose: bytes, what: str, max_age: int) -> None:
        if not secret_key:
            raise ValueError(f"the inbox needs settings.secret_key to sign {what} cookies")
        self._key = hashlib.sha256(purpose + b"\x00" + secret_key.encode()).digest()
        self.max_age = max_age

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def _seal(self, data: dict[str, Any]) -> str:
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def _open(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        try:
            expected = self._sign(payload)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            data = json.loads(_unb64(payload))
            issued_at = int(data["iat"])
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(data, dict) or time.time() - issued_at > self.max_age:
            return None
        return data


class SessionCodec(_SignedCookie):
    def __init__(self, secret_key: str, *, max_age: int = SESSION_MAX_AGE) -> None:
        super().__init__(secret_key, b"functionlayer-inbox-session", "session", max_age)

    def dumps(self, session: Session) -> str:
        return self._seal({"u": session.sid, "csrf": session.csrf, "iat": session.issued_at})

    def loads(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``, or None when missing, forged, malformed or too old."""
        data = self._open(cookie)
        if data is None or "u" not in data:
            return None
        username, csrf = data["u"], data.get("csrf")
        if not isinstance(csrf, str) or not (username is None or isinstance(username, str)):
            return None
        return Session(sid=username, csrf=csrf, issued_at=int(data["iat"]))


class DeviceCodec(_SignedCookie):
    """The device cookie: "this browser logged in successfully as ``u`` before", set at each
    successful login and kept after logout. It authenticates nothing; login throttling uses it
    so that failed guesses made elsewhere never lock a person out of a browser they used
    before (``_accounts.LoginThrottle``). Signed like the session cookie, with its own key."""

    def __init__(self, secret_key: str, *, max_age: int = DEVICE_MAX_AGE) -> None:
        super().__init__(secret_key, b"functionlayer-inbox-device", "device", max_age)

    def dumps(self, username: str, device_id: str | None = None) -> str:
        """A cookie naming ``username``; ``device_id`` keeps the browser's id (a new one if
        None)."""
        return self._seal(
            {"u": username, "d": device_id or secrets.token_urlsafe(18), "iat": int(time.time())}
        )

    def loads(self, cookie: str | None) -> tuple[str, str] | None:
        """``(username, device id)``, or None when missing, forged, malformed or too old."""
        data = self._open(cookie)
        if data is None:
            return None
        username, device_id = data.get("u"), data.get("d")
        if not isinstance(username, str) or not isinstance(device_id, str) or not device_id:
            return None
        return username, device_id
