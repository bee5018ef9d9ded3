"""Lost-property reports taken by the bot's form (its ``lost_property`` custom messages)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import enum_column
from api.db import Base, UTCDateTime, utcnow
from api.enums import LostPropertyStatus


class LostPropertyReport(Base):
    __tablename__ = "lost_property_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    fan_id: Mapped[int] = mapped_column(ForeignKey("fans.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    item: Mapped[str | None] = mapped_column(String(500))
    lost_when: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[LostPropertyStatus] = mapped_column(
        enum_column(LostPropertyStatus), default=LostPropertyStatus.open
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
