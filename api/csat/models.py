"""Fans' satisfaction answers (CSAT): one survey per conversation a person resolved."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import enum_column
from api.db import Base, UTCDateTime
from api.enums import Channel


class CsatResponse(Base):
    """The survey of one conversation: asked, then (maybe) a score 1-5 and a comment."""

    __tablename__ = "csat_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    # The person who handled the conversation.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    # 1-5; null until the fan answers.
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    asked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    comment_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
