"""The outbox: one delivery row per outgoing message on a push channel (Messenger, web chat),
committed with the message itself; the delivery worker (api/outbox/worker.py) sends it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import JSONType, enum_column
from api.db import Base, UTCDateTime, utcnow
from api.enums import Channel, OutboxStatus


class OutboxItem(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),
                      # the head of a conversation's queue (per-conversation order)
                      Index("ix_outbox_conversation_status", "conversation_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    # Messenger: the PSID; web chat: the session id (its socket.io room).
    recipient: Mapped[str] = mapped_column(String(128))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus), default=OutboxStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Messenger: Send API bodies of the reply already accepted (a retry sends the rest).
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_subcode: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    channel_message_id: Mapped[str | None] = mapped_column(String(255))
    # When a retry is due (back-off with jitter); None: now.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Held by a worker until then (a dead replica's rows are taken over after it).
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
