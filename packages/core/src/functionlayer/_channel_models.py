"""Wire models of where a request goes and what an approver may pick: contact channels,
response options, the agent's request context and the operator's approval policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from functionlayer._wire import WireModel

__all__ = [  # re-exported by functionlayer.models, and from there by functionlayer
    "CONTEXT_FIELD_LIMIT",
    "ApprovalPolicy",
    "ContactChannel",
    "DiscordContactChannel",
    "EmailContactChannel",
    "EmailRecipient",
    "RequestContext",
    "ResponseOption",
    "SMSContactChannel",
    "SlackContactChannel",
    "TeamsContactChannel",
    "WhatsAppContactChannel",
]


class SlackContactChannel(WireModel):
    """Route a request to a Slack channel or user."""

    channel_or_user_id: str
    context_about_channel_or_user: str | None = None
    bot_token: str | None = None
    """Overrides the server's bot token for this channel."""
    allowed_responder_ids: list[str] | None = None
    """Slack user ids allowed to answer; anyone in the channel when unset."""
    thread_ts: str | None = None


class DiscordContactChannel(WireModel):
    """Route a request to Discord (a FunctionLayer addition): a channel of a server the bot is
    in (``channel_id``), or a direct message to a user (``user_id``). With both, the message
    goes to the channel and the user is who it is meant for."""

    channel_id: str | None = None
    user_id: str | None = None
    allowed_responder_ids: list[str] | None = None
    """Discord user ids allowed to answer; anyone the policy allows when unset."""
    context: str | None = None
    """Who or what this is (shown in the message and in tool descriptions)."""


class TeamsContactChannel(WireModel):
    """Route a request to Microsoft Teams (a FunctionLayer addition): a conversation (a channel
    or a chat) the bot is in, posted through the Bot Framework connector the server's operator
    configured (the agent never names where the bot's token goes)."""

    conversation_id: str
    allowed_responder_ids: list[str] | None = None
    """Microsoft Entra (AAD) object ids allowed to answer; anyone the policy allows when unset."""
    context: str | None = None
    """Who or what this is (shown in the card and in tool descriptions)."""


class EmailContactChannel(WireModel):
    """Route a request to an email address."""

    address: str
    context_about_user: str | None = None
    subject: str | None = None
    in_reply_to_message_id: str | None = None
    references_message_id: str | None = None
    additional_recipients: list[EmailRecipient] | None = None


class EmailRecipient(WireModel):
    address: str
    context_about_user: str | None = None
    field: Literal["to", "cc", "bcc"] = "to"


class SMSContactChannel(WireModel):
    phone_number: str
    context_about_user: str | None = None


class WhatsAppContactChannel(WireModel):
    phone_number: str
    context_about_user: str | None = None


class ContactChannel(WireModel):
    """Where a request goes. Exactly one kind is normally set (``slack=``, ``email=``, ...).

    ``users`` (a FunctionLayer addition) names web-inbox users who may answer: a request with
    a channel is shown in the inbox only to the users it is routed to.
    """

    slack: SlackContactChannel | None = None
    sms: SMSContactChannel | None = None
    whatsapp: WhatsAppContactChannel | None = None
    email: EmailContactChannel | None = None
    users: list[str] | None = None
    discord: DiscordContactChannel | None = None
    teams: TeamsContactChannel | None = None

    def describe(self) -> str:
        """A short human description, used for tool names and docstrings."""
        if self.slack is not None:
            who = self.slack.context_about_channel_or_user or self.slack.channel_or_user_id
            return f"Slack ({who})"
        if self.email is not None:
            who = self.email.context_about_user or self.email.address
            return f"email ({who})"
        if self.discord is not None:
            where = self.discord.context or self.discord.channel_id or self.discord.user_id
            return f"Discord ({where or 'a channel'})"
        if self.teams is not None:
            return f"Microsoft Teams ({self.teams.context or self.teams.conversation_id})"
        if self.sms is not None:
            return f"SMS ({self.sms.context_about_user or self.sms.phone_number})"
        if self.whatsapp is not None:
            return f"WhatsApp ({self.whatsapp.context_about_user or self.whatsapp.phone_number})"
        if self.users:
            return f"the web inbox ({', '.join(self.users)})"
        return "a human"


class ResponseOption(WireModel):
    """A pre-written answer the human can pick (for example a reason to reject)."""

    name: str
    title: str | None = None
    description: str | None = None
    prompt_fill: str | None = None
    interactive: bool = False


CONTEXT_FIELD_LIMIT = 4000
"""At most this many characters per field of :class:`RequestContext`."""


class RequestContext(WireModel):
    """What the agent says about why it asks (a FunctionLayer addition), for the approver.

    Never trusted: the agent (and a prompt-injected model) writes every word of it. Every
    channel shows it as quoted text labelled as coming from the agent, with hidden characters
    marked (``_display.format_context``); nothing in it changes routing, policy or the call.
    Each field is at most :data:`CONTEXT_FIELD_LIMIT` characters (:meth:`bounded` cuts
    longer text before sending)."""

    user_request: str | None = Field(default=None, max_length=CONTEXT_FIELD_LIMIT)
    """What the user asked the agent (the last user message)."""
    reason: str | None = Field(default=None, max_length=CONTEXT_FIELD_LIMIT)
    """The model's stated reason: its text before the tool call."""
    turn: str | None = Field(default=None, max_length=CONTEXT_FIELD_LIMIT)
    """Anything else of the conversation turn the agent chose to include."""

    @classmethod
    def bounded(
        cls,
        *,
        user_request: str | None = None,
        reason: str | None = None,
        turn: str | None = None,
    ) -> RequestContext | None:
        """A context with each field cut to the limit (``…`` marks a cut); None when empty."""

        def cut(text: str | None) -> str | None:
            if text is None or not text.strip():
                return None
            text = text.strip()
            if len(text) <= CONTEXT_FIELD_LIMIT:
                return text
            return text[: CONTEXT_FIELD_LIMIT - 1] + "…"

        fields = {"user_request": cut(user_request), "reason": cut(reason), "turn": cut(turn)}
        if not any(fields.values()):
            return None
        return cls(**fields)


class ApprovalPolicy(WireModel):
    """How a server routes and decides a request (FunctionLayer addition).

    - ``channels`` with ``mode="any_of"``: send to all at once, the first answer wins.
    - ``mode="escalate"``: send to ``channels[0]``; every ``escalate_after_seconds`` without an
      answer, also send to the next channel.
    - ``approvals_required`` > 1: a quorum; that many distinct responders must approve, and any
      one rejection rejects with that responder's feedback.
    """

    channels: list[ContactChannel] = Field(default_factory=list)
    mode: Literal["any_of", "escalate"] = "any_of"
    escalate_after_seconds: float | None = None
    approvals_required: int = Field(default=1, ge=1)
    responders: list[str] | None = None
    """Who may answer (inbox user names, email addresses or Slack user ids)."""
