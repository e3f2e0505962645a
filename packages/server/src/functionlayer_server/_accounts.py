"""Credentials and the directory of persons: agent and approver tokens, persons with their
linked identities (inbox login, email addresses, Slack, Discord and Teams ids) and projects, inbox
sessions kept server-side, and login throttling.

Nothing here decides anything about a request: it answers "who is this credential?"; the rules
of what that person may do live in ``_policy``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from functionlayer_server._auth import (
    ApiClient,
    hash_password,
    hash_token,
    new_token,
    new_token_id,
    verify_password,
)
from functionlayer_server._errors import ConflictError, InvalidRequestError, NotFoundError
from functionlayer_server._policy import Directory, Identity, Person
from functionlayer_server._scheduler import Clock
from functionlayer_server._store import Store
from functionlayer_server._store._base import IdentityTakenError, PersonRow, TokenRow

__all__ = ["MIN_PASSWORD_LENGTH", "Accounts", "Links", "LoginThrottle", "LoginThrottled"]

MIN_PASSWORD_LENGTH = 12
SESSION_MAX_AGE = 12 * 3600

_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class Links(TypedDict, total=False):
    """A person's identities and projects to link (each one left out: none)."""

    emails: Sequence[str]
    slack_ids: Sequence[str]
    discord_ids: Sequence[str]
    teams_ids: Sequence[str]
    projects: Sequence[str]


def _person(row: PersonRow) -> Person:
    ids = row.identities
    return Person(
        name=row.name,
        emails=frozenset(v.lower() for k, v in ids if k == "email"),
        slack_ids=frozenset(v for k, v in ids if k == "slack"),
        discord_ids=frozenset(v for k, v in ids if k == "discord"),
        teams_ids=frozenset(v for k, v in ids if k == "teams"),
        projects=frozenset(row.projects),
        disabled=row.disabled,
    )


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} seconds")
        self.retry_after = retry_after


class LoginThrottle:
    """Failed logins in a sliding window, counted so that nobody can lock a person out:

    - from a browser without a valid device cookie for that username (see
      ``_inbox._session.DeviceCodec``): per username (``per_user``) and per client address
      (``per_address``). An attacker who sprays guesses for ``alice`` is refused after
      ``per_user`` of them, from any address, even with the right password;
    - from a browser that logged in successfully as that username before (its device id):
      only that browser's own failures count (``per_user``). The agent knows approvers' names
      but cannot read or forge their device cookies, so its guesses never lock a person out
      of a browser they have used before.

    In memory: each server process counts its own (a restart forgets), which still caps
    guessing at ``per_user`` tries per window per process."""

    def __init__(
        self, *, per_user: int = 5, per_address: int = 20, window_seconds: float = 300.0
    ) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def _keys(self, username: str, address: str, device: str | None) -> list[tuple[str, int]]:
        if device is not None:
            return [(f"d:{device}:{username.lower()}", self.per_user)]
        return [(f"u:{username.lower()}", self.per_user), (f"a:{address}", self.per_address)]

    def check(
        self, username: str, address: str, device: str | None = None, now: float | None = None
    ) -> None:
        """Raises :class:`LoginThrottled` when this attempt must be refused unchecked.
        ``device``: the device id of a valid device cookie naming ``username``, if any."""
        now = time.monotonic() if now is None else now
        for key, limit in self._keys(username, address, device):
            times = self._recent(key, now)
            if len(times) >= limit:
                raise LoginThrottled(max(1, int(times[0] + self.window - now) + 1))

    def failed(
        self, username: str, address: str, device: str | None = None, now: float | None = None
    ) -> None:
        now = time.monotonic() if now is None else now
        for key, _ in self._keys(username, address, device):
            self._recent(key, now).append(now)
        if len(self._failures) > 10_000:  # bound memory under a spray of names
            for key in [k for k, v in self._failures.items() if not v][:5_000]:
                del self._failures[key]

    def succeeded(self, username: str, device: str | None = None) -> None:
        # From a known browser only its own count is cleared: alice logging in there must
        # not give someone guessing her password elsewhere a fresh window.
        if device is not None:
            self._failures.pop(f"d:{device}:{username.lower()}", None)
        else:
            self._failures.pop(f"u:{username.lower()}", None)


@dataclass(frozen=True)
class NewSession:
    session_id: str
    expires_at: float


class Accounts:
    """Tokens, persons and sessions on top of the store. Every lookup reads the database (no
    cache), so a revoked token, a disabled person or an ended session is refused at once by
    every server process."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.throttle = LoginThrottle()

    # -- tokens ---------------------------------------------------------------------------

    async def create_token(
        self, name: str, *, project: str = "default", approver: str | None = None
    ) -> str:
        """A new token; only its hash is stored, so show it once. With ``approver`` it acts as
        that person (for integrations that decide through the API); otherwise it is an agent
        token, which can never decide."""
        if not name.strip() or not project.strip():
            raise InvalidRequestError("token name and project must not be empty")
        if approver is not None:
            row = await self.store.get_person(approver)
            if row is None:
                raise NotFoundError(f"no person {approver!r}: create them with 'users create'")
            if row.disabled:
                raise InvalidRequestError(f"{approver!r} is disabled")
        taken = ConflictError(
            f"a live token named {name!r} already exists in project {project!r}: names are "
            "unique per project; choose another name, or revoke that token first"
        )
        if await self.store.live_token_named(project, name):
            raise taken
        token = new_token()
        added = await self.store.add_token(
            project,
            name,
            hash_token(token),
            self.clock.now(),
            role="approver" if approver is not None else "agent",
            approver=approver,
            token_id=new_token_id(),
        )
        if not added:  # created concurrently (the unique index)
            raise taken
        return token

    async def authenticate_token(self, token: str) -> ApiClient | None:
        row = await self.store.find_token(hash_token(token))
        if row is None:
            return None
        return ApiClient(
            project=row.project,
            token_name=row.name,
            role=row.role,
            approver=row.approver,
            token_id=row.token_id,
        )

    async def list_tokens(self) -> list[TokenRow]:
        return await self.store.list_tokens()

    async def revoke_token(self, name: str) -> int:
        return await self.store.revoke_tokens(name, self.clock.now())

    # -- persons --------------------------------------------------------------------------

    async def create_person(
        self, name: str, *, password: str | None = None, **links: Unpack[Links]
    ) -> Person:
        """Create the person (or update: a new password ends their sessions) and link the
        identities given. Without ``projects`` a new person joins ``default``."""
        name = name.strip()
        if not name or not name.isprintable() or len(name) > 256 or ":" in name:
            raise InvalidRequestError(
                "a person's name must be 1-256 printable characters without ':'"
            )
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequestError(
                f"the password must be at least {MIN_PASSWORD_LENGTH} characters"
            )
        hashed = await asyncio.to_thread(hash_password, password) if password else None
        new = await self.store.upsert_person(name, password_hash=hashed, now=self.clock.now())
        await self.link(name, **links)
        if new and not links.get("projects"):
            await self.store.add_membership(name, "default")
        person = await self.get_person(name)
        assert person is not None
        return person

    async def link(self, name: str, **links: Unpack[Links]) -> Person:
        if await self.store.get_person(name) is None:
            raise NotFoundError(f"no person {name!r}")
        pairs = [("email", e.strip().lower()) for e in links.get("emails", ())]
        pairs += [("slack", s.strip()) for s in links.get("slack_ids", ())]
        pairs += [("discord", d.strip()) for d in links.get("discord_ids", ())]
        pairs += [("teams", t.strip().lower()) for t in links.get("teams_ids", ())]
        for kind, value in pairs:
            if not value or not value.isprintable() or (kind == "email" and "@" not in value):
                raise InvalidRequestError(f"not a valid {kind} identity: {value!r}")
            try:
                await self.store.link_identity(name, kind, value)
            except IdentityTakenError as exc:
                raise InvalidRequestError(str(exc)) from None
        for project in links.get("projects", ()):
            if not project.strip():
                raise InvalidRequestError("project names must not be empty")
            await self.store.add_membership(name, project.strip())
        person = await self.get_person(name)
        assert person is not None
        return person

    async def disable(self, name: str, disabled: bool = True) -> None:
        if not await self.store.set_person_disabled(name, disabled):
            raise NotFoundError(f"no person {name!r}")

    async def get_person(self, name: str) -> Person | None:
        row = await self.store.get_person(name)
        return _person(row) if row is not None else None

    async def resolve(self, identity: Identity) -> Person | None:
        ident = identity.normalized()
        if ident.kind == "user":
            return await self.get_person(ident.value)
        owner = await self.store.find_identity(ident.kind, ident.value)
        return await self.get_person(owner) if owner is not None else None

    async def list_persons(self) -> list[Person]:
        persons = [await self.get_person(n) for n in await self.store.list_person_names()]
        return [p for p in persons if p is not None]

    async def directory_for(
        self, texts: Iterable[str], identities: Iterable[Identity]
    ) -> Directory:
        """The persons that the given names/identities resolve to (a small directory for one
        decision: the policy never needs the whole table)."""
        from functionlayer_server._policy import parse_identity_text

        found: dict[str, Person] = {}
        candidates: list[Identity] = list(identities)
        for text in texts:
            candidates.extend(parse_identity_text(text))
        for identity in candidates:
            person = await self.resolve(identity)
            if person is not None:
                found[person.name] = person
        return Directory.of(found.values())

    # -- inbox logins and sessions --------------------------------------------------------

    async def login(
        self, username: str, password: str, address: str, *, device: str | None = None
    ) -> Person | None:
        """The person if the password is right; raises :class:`LoginThrottled` when too many
        attempts failed recently (see :class:`LoginThrottle`). ``device``: the id from a valid
        device cookie of this browser naming ``username`` (it logged in as them before)."""
        self.throttle.check(username, address, device)
        row = await self.store.get_person(username)
        if row is None or not row.password_hash or row.disabled:
            # The same work as a real check, so timing does not reveal who exists.
            await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
            self.throttle.failed(username, address, device)
            return None
        if not await asyncio.to_thread(verify_password, password, row.password_hash):
            self.throttle.failed(username, address, device)
            return None
        self.throttle.succeeded(username, device)
        return _person(row)

    async def start_session(self, username: str, max_age: float = SESSION_MAX_AGE) -> NewSession:
        session_id = secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.store.add_session(_session_hash(session_id), username, now, now + max_age)
        return NewSession(session_id, now + max_age)

    async def session_person(self, session_id: str) -> Person | None:
        """The person of a live session: not ended, not expired, person not disabled."""
        row = await self.store.get_session(_session_hash(session_id))
        if row is None or row.expires_at <= self.clock.now():
            return None
        person = await self.get_person(row.username)
        if person is None or person.disabled:
            return None
        return person

    async def end_session(self, session_id: str) -> None:
        await self.store.delete_sessions(session_hash=_session_hash(session_id))

    async def end_sessions(self, username: str) -> None:
        await self.store.delete_sessions(username=username)
