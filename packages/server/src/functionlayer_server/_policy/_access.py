"""Who may see and who may decide a request: one pure function, ``refusal``, answers both, so
seeing and deciding cannot disagree (``may_see`` is ``refusal(...) is None``; ``may_decide``
raises its reason)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from functionlayer_server._policy._common import PolicyError, Request
from functionlayer_server._policy._directory import Directory, Identity, Person, named
from functionlayer_server._policy._effective import Effective

__all__ = ["Refusal", "may_decide", "may_see", "refusal"]


@dataclass(frozen=True)
class Refusal:
    reason: str


def refusal(
    request: Request,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
    via_identities: Sequence[Identity] | None,
) -> Refusal | None:
    if person is None:
        return Refusal("the identity is not linked to any person in the directory")
    if not person.active:
        return Refusal(f"{person.name} is disabled")
    if project not in person.projects:
        return Refusal(f"{person.name} is not a member of project {project!r}")
    for names in effective.restrictions:
        if not named(person, names, directory):
            return Refusal(f"{person.name} is not among the persons allowed to decide")
    if (
        effective.audience is not None
        and person.name not in effective.audience
        and not effective.restrictions
    ):
        return Refusal(f"{person.name} is not among the persons this request was routed to")
    if via_identities is not None and not any(
        directory.resolve(i) == person for i in via_identities
    ):
        return Refusal(f"{person.name} is not allowed to answer through this message")
    return None


def may_see(
    request: Request,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
) -> bool:
    """Whether the person may open the request in the inbox (exactly those who may decide)."""
    return refusal(request, project, person, effective, directory, None) is None


def may_decide(
    request: Request,
    project: str,
    person: Person | None,
    effective: Effective,
    directory: Directory,
    *,
    via_identities: Sequence[Identity] | None = None,
) -> Person:
    """The person, if they may decide; else ``forbidden``. ``via_identities``: a channel
    target's own allow-list (Slack/Discord/Teams ``allowed_responder_ids``), which must include
    them."""
    refused = refusal(request, project, person, effective, directory, via_identities)
    if refused is not None:
        raise PolicyError("forbidden", refused.reason)
    assert person is not None
    return person
