"""Status and kind values shared by the domain packages (enums, never bare strings)."""

from __future__ import annotations

import enum


class Channel(enum.StrEnum):
    messenger = "messenger"
    webchat = "webchat"
    rest = "rest"


class ConversationStatus(enum.StrEnum):
    bot = "bot"
    queued = "queued"
    assigned = "assigned"
    resolved = "resolved"


class Priority(enum.StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


class MessageKind(enum.StrEnum):
    incoming = "incoming"
    outgoing = "outgoing"
    activity = "activity"


class SenderType(enum.StrEnum):
    fan = "fan"
    bot = "bot"
    staff = "staff"
    system = "system"


class RelayStatus(enum.StrEnum):
    """What happened to an incoming fan message on the bot path."""

    pending = "pending"  # waiting for (or retrying) its bot turn
    answered = "answered"  # the bot turn ran and its replies are stored
    held = "held"  # a person owns the conversation: Rasa receives nothing
    standby = "standby"  # arrived while another app owns the Messenger thread
    skipped = "skipped"  # not for the bot (attachment only, too long, ...)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"


class StaffRole(enum.StrEnum):
    staff = "staff"
    supervisor = "supervisor"
    operator = "operator"
    admin = "admin"


class Presence(enum.StrEnum):
    online = "online"
    away = "away"
    offline = "offline"


class OutboxStatus(enum.StrEnum):
    """A delivery row of the outbox (api/outbox)."""

    pending = "pending"  # waiting to be sent (or for its retry time, or for a web chat socket)
    emitted = "emitted"  # web chat: emitted to a connected socket, proof not yet seen
    sent = "sent"  # handed to the channel (web chat: proven)
    failed = "failed"  # refused for good by the channel (no retry can help)
    dead = "dead"  # gave up after OUTBOX_MAX_ATTEMPTS temporary failures


class LostPropertyStatus(enum.StrEnum):
    open = "open"
    found = "found"
    closed = "closed"
