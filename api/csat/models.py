"""One fan-satisfaction survey per conversation: asked when a person resolves it, answered (a
score 1-5, then an optional comment) by the fan's next messages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import enum_column
from api.db import Base, UTCDateTime, utcnow
from api.enums import Channel


class CsatResponse(Base):
    __tablename__ = "csat_responses"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    # The person who handled the conversation (the last to write to the fan).
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    score: Mapped[int | None]  # 1-5; None until the fan answers
    comment: Mapped[str | None] = mapped_column(Text)  # the fan's words: never logged
    language: Mapped[str | None] = mapped_column(String(8))  # the survey's language
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    asked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    comment_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
