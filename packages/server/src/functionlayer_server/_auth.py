"""API tokens (per project) and inbox users. Nothing secret is stored in clear: tokens are long
random strings, so a plain SHA-256 is enough to store them; passwords use salted scrypt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = [
    "TOKEN_PREFIX",
    "ApiClient",
    "User",
    "hash_password",
    "hash_token",
    "new_token",
    "new_token_id",
    "verify_password",
]

TOKEN_PREFIX = "fl_"

# scrypt cost: ~30 ms and 16 MiB per hash on this class of machine.
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    """A human who may log into the web inbox."""

    username: str
    email: str | None = None
    slack_user_id: str | None = None


@dataclass(frozen=True)
class ApiClient:
    """Who is calling the API: the token's project, name and role. An ``agent`` token creates
    and reads its project's requests and may give up the ones it created; it can never decide.
    An ``approver`` token acts as the person ``approver`` (through the channel ``api``)."""

    project: str
    token_name: str
    role: str = "agent"
    approver: str | None = None
    token_id: str = ""
    """The token's immutable id: what owns the requests it creates (a name is only a label)."""

    @property
    def is_agent(self) -> bool:
        return self.role != "approver"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    return secrets.token_hex(16)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("the password must not be empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))
