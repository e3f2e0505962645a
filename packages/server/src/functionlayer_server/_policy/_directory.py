"""Who is who: the identities channels know people by, the persons of the operator's directory
with every identity linked to them, and how a name written in a policy resolves to a person."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Directory", "Identity", "IdentityKind", "Person", "named", "parse_identity_text"]


IdentityKind = Literal["user", "email", "slack", "discord", "teams"]


@dataclass(frozen=True)
class Identity:
    """How a channel knows someone: an inbox login, an email address, a Slack or Discord id, a
    Microsoft Teams (Entra/AAD object) id."""

    kind: IdentityKind
    value: str

    def normalized(self) -> Identity:
        if self.kind in ("email", "teams"):  # Teams ids are GUIDs: any case is the same id
            return Identity(self.kind, self.value.strip().lower())
        return Identity(self.kind, self.value.strip())

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Person:
    """One human in the operator's directory, with every identity linked to them."""

    name: str
    emails: frozenset[str] = frozenset()
    slack_ids: frozenset[str] = frozenset()
    discord_ids: frozenset[str] = frozenset()
    teams_ids: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset({"default"})
    disabled: bool = False

    @property
    def active(self) -> bool:
        return not self.disabled

    @property
    def username(self) -> str:
        """The inbox login (the person's name)."""
        return self.name

    def owns(self, identity: Identity) -> bool:
        ident = identity.normalized()
        if ident.kind == "user":
            return ident.value == self.name
        if ident.kind == "email":
            return ident.value in self.emails
        if ident.kind == "slack":
            return ident.value in self.slack_ids
        if ident.kind == "teams":
            return ident.value in self.teams_ids
        return ident.value in self.discord_ids


@dataclass(frozen=True)
class Directory:
    """The persons the decision at hand may involve (the service loads only those it needs)."""

    persons: tuple[Person, ...] = ()

    @classmethod
    def of(cls, persons: Iterable[Person]) -> Directory:
        return cls(tuple(persons))

    def resolve(self, identity: Identity) -> Person | None:
        for person in self.persons:
            if person.owns(identity):
                return person
        return None

    def resolve_name(self, text: str) -> Person | None:
        """A name as written in a policy (``responders``): a person's name, one of their email
        addresses, or a Slack/Discord id, optionally prefixed ``email:``/``slack:``/...."""
        return self.resolve_any(parse_identity_text(text))

    def resolve_any(self, candidates: Sequence[Identity]) -> Person | None:
        for identity in candidates:
            found = self.resolve(identity)
            if found is not None:
                return found
        return None


def parse_identity_text(text: str) -> list[Identity]:
    """The identities a bare string in a policy may mean, most specific first."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if sep and kind in ("user", "email", "slack", "discord", "teams") and rest:
        return [Identity(kind, rest)]  # type: ignore[arg-type]
    if "@" in text:
        return [Identity("email", text), Identity("user", text)]
    return [
        Identity("user", text),
        Identity("slack", text),
        Identity("discord", text),
        Identity("teams", text),
    ]


def named(person: Person, names: Iterable[str], directory: Directory) -> bool:
    """Whether ``person`` is one of ``names`` (names or identities, as in a policy)."""
    for text in names:
        found = directory.resolve_name(text)
        if found is not None and found.name == person.name:
            return True
        if person.name == text:
            return True
    return False
