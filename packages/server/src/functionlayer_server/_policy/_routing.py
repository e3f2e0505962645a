"""Routing: who a request may be sent to. Nothing the agent names may reach beyond the
directory members of its project and what the operator's routing allows."""

from __future__ import annotations

from collections.abc import Iterable

from functionlayer import ContactChannel

from functionlayer_server._policy._common import PolicyError, Spec
from functionlayer_server._policy._directory import (
    Directory,
    Identity,
    IdentityKind,
    Person,
    named,
)
from functionlayer_server._policy._operator import ProjectRules

__all__ = ["channels_of", "check_routing", "routing_identities"]


def channels_of(spec: Spec) -> list[ContactChannel]:
    channels = [spec.channel] if spec.channel is not None else []
    if spec.policy is not None:
        channels.extend(spec.policy.channels)
    return channels


def routing_identities(spec: Spec) -> list[Identity]:
    """Every identity the request's routing names personally (not channels such as a Slack
    channel id, which name nobody)."""
    found: list[Identity] = []
    for channel in channels_of(spec):
        for user in channel.users or ():
            found.append(Identity("user", user))
        if channel.email is not None:
            found.append(Identity("email", channel.email.address))
            for extra in channel.email.additional_recipients or ():
                found.append(Identity("email", extra.address))
        if channel.slack is not None:
            for rid in channel.slack.allowed_responder_ids or ():
                found.append(Identity("slack", rid))
        if channel.discord is not None:
            if channel.discord.user_id:
                found.append(Identity("discord", channel.discord.user_id))
            for rid in channel.discord.allowed_responder_ids or ():
                found.append(Identity("discord", rid))
        if channel.teams is not None:
            for rid in channel.teams.allowed_responder_ids or ():
                found.append(Identity("teams", rid))
    return [i.normalized() for i in found]


def _member(person: Person | None, project: str) -> bool:
    return person is not None and person.active and project in person.projects


def check_routing(spec: Spec, project: str, rules: ProjectRules, directory: Directory) -> None:
    """Refuse (``routing_refused``) a request routed outside what the operator allows. Nothing
    has been stored or sent when this raises."""

    def refuse(message: str) -> None:
        raise PolicyError("routing_refused", message + "; nothing was stored or sent")

    def responders(kind: IdentityKind, label: str, ids: Iterable[str] | None) -> None:
        """A channel target's own allow-list names directory members of the project only."""
        for rid in ids or ():
            if not _member(directory.resolve(Identity(kind, rid)), project):
                refuse(f"{label} user {rid!r} in allowed_responder_ids is not in the directory")

    for channel in channels_of(spec):
        for user in channel.users or ():
            if not _member(directory.resolve(Identity("user", user)), project):
                refuse(f"inbox user {user!r} is not a member of project {project!r}")
        if channel.email is not None:
            addresses = [channel.email.address] + [
                r.address for r in channel.email.additional_recipients or ()
            ]
            for address in addresses:
                addr = address.strip().lower()
                domain = addr.rpartition("@")[2]
                if not (
                    _member(directory.resolve(Identity("email", addr)), project)
                    or addr in rules.email_addresses
                    or domain in rules.email_domains
                ):
                    refuse(
                        f"email address {address!r} is not a directory member of project "
                        f"{project!r} nor allowed by the operator's routing"
                    )
        if channel.slack is not None:
            target = channel.slack.channel_or_user_id.strip()
            if not (
                _member(directory.resolve(Identity("slack", target)), project)
                or target in rules.slack_channels
            ):
                refuse(
                    f"Slack channel or user {target!r} is not allowed by the operator's routing "
                    f"for project {project!r}"
                )
            responders("slack", "Slack", channel.slack.allowed_responder_ids)
        if channel.discord is not None:
            discord = channel.discord
            channel_id = (discord.channel_id or "").strip()
            user_id = (discord.user_id or "").strip()
            if not channel_id and not user_id:
                refuse("a Discord target needs a channel_id or a user_id")
            if channel_id and channel_id not in rules.discord_channels:
                refuse(
                    f"Discord channel {channel_id!r} is not allowed by the operator's routing "
                    f"for project {project!r}"
                )
            if user_id and not _member(directory.resolve(Identity("discord", user_id)), project):
                refuse(f"Discord user {user_id!r} is not a directory member of project {project!r}")
            responders("discord", "Discord", discord.allowed_responder_ids)
        if channel.teams is not None:
            conversation = channel.teams.conversation_id.strip()
            if not conversation or conversation not in rules.teams_conversations:
                refuse(
                    f"Teams conversation {conversation!r} is not allowed by the operator's "
                    f"routing for project {project!r}"
                )
            responders("teams", "Teams", channel.teams.allowed_responder_ids)
        if channel.sms is not None or channel.whatsapp is not None:
            refuse("SMS and WhatsApp routing are not available on this server")
    policy = spec.policy
    if policy is not None:
        for who in policy.responders or ():
            person = directory.resolve_name(who)
            if not _member(person, project):
                refuse(f"responder {who!r} is not a directory member of project {project!r}")
            assert person is not None
            if rules.deciders is not None and not named(person, rules.deciders, directory):
                refuse(f"responder {who!r} may not decide in project {project!r}")
