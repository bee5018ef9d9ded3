"""Plain snapshots the units of work return to the async side (relay, handoff, channels): what
they need of a conversation, a message or a turn without touching the database again.

They live apart from the units of work (:mod:`api.flows`, :mod:`api.handoff.flows`) so that
handoff/ and relay/ can share them without importing the flows that import them in turn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from api.conversations.models import Conversation, Message
from api.enums import Channel, ConversationStatus, SenderType


@dataclass(frozen=True)
class ConversationRef:
    """What the async side needs to know about a conversation."""

    id: int
    channel: Channel
    external_id: str
    rasa_sender_id: str
    status: ConversationStatus
    language: str | None

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationRef:
        ident = conversation.identity
        return cls(
            id=conversation.id,
            channel=conversation.channel,
            external_id=ident.external_id,
            rasa_sender_id=ident.rasa_sender_id,
            status=conversation.status,
            language=conversation.language,
        )


@dataclass(frozen=True)
class OutgoingRef:
    id: int
    uid: str
    sender_type: SenderType
    text: str | None
    payload: dict[str, Any] | None


def out_ref(msg: Message) -> OutgoingRef:
    return OutgoingRef(msg.id, msg.uid, msg.sender_type, msg.text, msg.payload)


@dataclass
class Received:
    conversation: ConversationRef
    message_id: int | None  # None: a duplicate, dropped
    relay: bool = False
    replies: list[OutgoingRef] = field(default_factory=list)
    held: bool = False  # a text message for the person who owns the thread (triaged too)
    duplicate_of: int | None = None  # a resend of this stored message (same message id)
    turn: PendingTurn | None = None  # its bot turn, claimed for this replica when stored
    collected: list[OutgoingRef] | None = None  # a pull channel's replies, taken with its turn


@dataclass(frozen=True)
class HistoryTurn:
    """An earlier fan message, for triage: its text, the bot's parse, its stored score."""

    text: str
    parse: dict[str, Any] | None
    negative: float | None


@dataclass(frozen=True)
class PendingTurn:
    id: int
    uid: str
    text: str
    attempts: int  # counted attempts (a claimed turn includes the one about to run)
    next_relay_at: dt.datetime | None
    claimed: bool = False  # this attempt is already counted: call Rasa straight away
    history: tuple[HistoryTurn, ...] = ()  # the fan's previous messages, oldest first
    language: str | None = None  # decided when the message was stored (metadata.language)
    command: bool = False  # a pressed button's payload: reaches Rasa as an intent command


@dataclass
class StoredTurn:
    replies: list[OutgoingRef]
    more_pending: bool  # another fan message of the conversation waits for the bot
    alert: str | None = None  # an urgent thread nobody can take: text for the alert webhook
    handoff: dict[str, Any] | None = None
    collected: list[OutgoingRef] | None = None  # store_turn(collect=True): the pull reply
