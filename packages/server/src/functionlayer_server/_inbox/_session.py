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


class SessionCodec:
    def __init__(self, secret_key: str, *, max_age: int = SESSION_MAX_AGE) -> None:
        if not secret_key:
            raise ValueError("the inbox needs settings.secret_key to sign session cookies")
        # Derive a key for this purpose only, so the same secret can sign other things safely.
        self._key = hashlib.sha256(
            b"functionlayer-inbox-session\x00" + secret_key.encode()
        ).digest()
        self.max_age = max_age

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        body = json.dumps(
            {"u": session.sid, "csrf": session.csrf, "iat": session.issued_at},
            separators=(",", ":"),
        )
        payload = _b64(body.encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``, or None when missing, forged, malformed or too old."""
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
            username = data["u"]
            csrf = data["csrf"]
            issued_at = int(data["iat"])
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(csrf, str) or not (username is None or isinstance(username, str)):
            return None
        if time.time() - issued_at > self.max_age:
            return None
        return Session(sid=username, csrf=csrf, issued_at=issued_at)


class DeviceCodec:
    """The device cookie: "this browser logged in successfully as ``u`` before", set at each
    successful login and kept after logout. It authenticates nothing; login throttling uses it
    so that failed guesses made elsewhere never lock a person out of a browser they used
    before (``_accounts.LoginThrottle``). Signed like the session cookie, with its own key."""

    def __init__(self, secret_key: str, *, max_age: int = DEVICE_MAX_AGE) -> None:
        if not secret_key:
            raise ValueError("the inbox needs settings.secret_key to sign device cookies")
        self._key = hashlib.sha256(b"functionlayer-inbox-device\x00" + secret_key.encode()).digest()
        self.max_age = max_age

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, username: str, device_id: str | None = None) -> str:
        """A cookie naming ``username``; ``device_id`` keeps the browser's id (a new one if
        None)."""
        body = json.dumps(
            {"u": username, "d": device_id or secrets.token_urlsafe(18), "iat": int(time.time())},
            separators=(",", ":"),
        )
        payload = _b64(body.encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, cookie: str | None) -> tuple[str, str] | None:
        """``(username, device id)``, or None when missing, forged, malformed or too old."""
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
            username, device_id, issued_at = data["u"], data["d"], int(data["iat"])
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(username, str) or not isinstance(device_id, str) or not device_id:
            return None
        if time.time() - issued_at > self.max_age:
            return None
        return username, device_id
