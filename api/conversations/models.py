"""Fans, their channel identities, conversations and the transcript."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.columns import JSONType, enum_column
from api.db import Base, UTCDateTime, utcnow
from api.enums import (
    Channel,
    ConversationStatus,
    DeliveryStatus,
    MessageKind,
    Priority,
    RelayStatus,
    SenderType,
)


def new_uid() -> str:
    return uuid.uuid4().hex


class Fan(Base):
    __tablename__ = "fans"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="fan")


class ChannelIdentity(Base):
    """A fan as one channel knows them: a Messenger PSID, a web chat session, a REST sender."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fan_id: Mapped[int] = mapped_column(ForeignKey("fans.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The fan's last message (web chat: or connection). Messenger's 24-hour / 7-day windows
    # count from it; a web chat session expires WEBCHAT_SESSION_IDLE_DAYS after it.
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    fan: Mapped[Fan] = relationship(back_populates="identities")

    @property
    def rasa_sender_id(self) -> str:
        """The sender id of this identity's tracker in Rasa."""
        return f"{self.channel.value}-{self.external_id}"


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_status_priority", "status", "priority"),
                      # Reports select conversations by when they started (api/reports).
                      Index("ix_conversations_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    fan_id: Mapped[int] = mapped_column(ForeignKey("fans.id", ondelete="CASCADE"), index=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("channel_identities.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    status: Mapped[ConversationStatus] = mapped_column(
        enum_column(ConversationStatus), default=ConversationStatus.bot
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"), index=True
    )
    last_assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL")
    )
    topic: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[Priority | None] = mapped_column(enum_column(Priority))
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    handoff_request: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    language: Mapped[str | None] = mapped_column(String(8))
    # Bumped on every state change: a conditional update on it makes assignment atomic.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_fan_message_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_response_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The assignee's first reply (stops the first-response timer).
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The last triage decision that handed the thread off (topic, priority, reasons, language,
    # triggers): personal data (reasons quote the fan), never logged.
    triage: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Last time supervisors were alerted that nobody suitable could take this urgent thread.
    alerted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    identity: Mapped[ChannelIdentity] = relationship(lazy="joined")
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id"
    )


class Message(Base):
    """One transcript entry: a fan's message, a reply (bot, staff, system) or an activity."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "channel_message_id"),
        # A fan's message id is theirs alone: one client's "1" never drops another fan's message.
        # A conversation belongs to one channel identity, so this is per (channel, fan, id).
        Index("uq_messages_conversation_id_fan_message_id", "conversation_id", "fan_message_id",
              unique=True),
        Index("ix_messages_conversation_relay", "conversation_id", "relay_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    kind: Mapped[MessageKind] = mapped_column(enum_column(MessageKind))
    sender_type: Mapped[SenderType] = mapped_column(enum_column(SenderType))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    text: Mapped[str | None] = mapped_column(Text)
    # buttons / image / attachments / activity details, channel-neutral
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The id the channel gave a message we sent (Messenger mid of a reply, or of a staff reply
    # from Meta's inbox): Meta's ids are global, so unique per channel.
    channel_message_id: Mapped[str | None] = mapped_column(String(255))
    # The id a fan's message came with (REST metadata.message_id, web chat message_id, Messenger
    # mid): a repeat of it in the same conversation is dropped as a duplicate.
    fan_message_id: Mapped[str | None] = mapped_column(String(255))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))

    relay_status: Mapped[RelayStatus | None] = mapped_column(enum_column(RelayStatus))
    relay_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_relay_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    relay_error: Mapped[str | None] = mapped_column(String(200))
    # The replica running this message's bot turn (api/cluster): another replica takes the turn
    # only once that one's heartbeat is stale.
    relay_claimed_by: Mapped[str | None] = mapped_column(String(128))
    intent: Mapped[str | None] = mapped_column(String(100))
    intent_confidence: Mapped[float | None]
    parse: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Triage's negative-emotion score of a fan message (history is never rescored).
    negative: Mapped[float | None]
    # The language the switchboard decided for a fan's text message (ISO 639-1), sent to Rasa
    # as metadata.language (api/conversations/language.py).
    language: Mapped[str | None] = mapped_column(String(8))

    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(enum_column(DeliveryStatus))
    delivery_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
