"""Review-queue tables: one row per distinct question, the fan messages behind it, and the
audit trail of every change made to the bot's training data."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import JSONType, enum_column
from api.db import Base, UTCDateTime, utcnow


class ReviewStatus(enum.StrEnum):
    new = "new"
    annotated = "annotated"
    ignored = "ignored"


class ReviewReason(enum.StrEnum):
    """Why a message is in the queue (an item collects every reason its messages had)."""

    fallback = "fallback"  # nlu_fallback / out_of_scope
    low_confidence = "low_confidence"  # answered, but under REVIEW_LOW_CONFIDENCE
    complex_handoff = "complex_handoff"  # in a thread handed off because the bot was struggling
    flagged = "flagged"  # staff: "the bot should have known this"
    triage_missed = "triage_missed"  # staff: "this should have come to a person" (with a label)
    triage_unneeded = "triage_unneeded"  # staff: "this did not need a person"


class ReviewItem(Base):
    """A distinct fan question (grouped by its normalised text) waiting for an operator."""

    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    # The first wording seen; personal data until an operator redacts it (never logged).
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[ReviewStatus] = mapped_column(enum_column(ReviewStatus),
                                                 default=ReviewStatus.new, index=True)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    occurrences: Mapped[int] = mapped_column(Integer, default=0)
    predicted_intent: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float | None]
    ranking: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The annotation: the (redacted) example text that went into the training data; ``intent``
    # is ``triage:<label>`` when it went into triage's data (api/review/triage_data.py).
    intent: Mapped[str | None] = mapped_column(String(100))
    example_text: Mapped[str | None] = mapped_column(Text)
    annotated_by: Mapped[str | None] = mapped_column(String(64))
    annotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReviewMessage(Base):
    """A fan message behind a review item (one message is in the queue once)."""

    __tablename__ = "review_messages"
    __table_args__ = (UniqueConstraint("message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"),
                                         index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"))
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    note: Mapped[str | None] = mapped_column(String(500))  # a flag's reason
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewCursor(Base):
    """How far the collector has read (fan messages by id, handed-off threads by time)."""

    __tablename__ = "review_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_message_id: Mapped[int] = mapped_column(Integer, default=0)
    handoffs_seen_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class TrainingDataChange(Base):
    """Who changed the bot's training data, how, and when."""

    __tablename__ = "training_data_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    by: Mapped[str] = mapped_column(String(64))
    # add_example, remove_example, new_intent; add_triage_example, remove_triage_example
    # (``intent`` is then the triage label)
    action: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str] = mapped_column(String(100))
    example_text: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_items.id", ondelete="SET NULL"))
    files: Mapped[list[str]] = mapped_column(JSONType, default=list)
