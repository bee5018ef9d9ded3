"""Inbox tables: browser sessions, private notes, flags, canned responses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UTCDateTime, utcnow


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random token, stored here only as a hash."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Note(Base):
    """A private note on a conversation: staff only, never sent to the fan."""

    __tablename__ = "conversation_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# What a flag says (one flag per message and kind): ``bot`` "the bot should have known this";
# ``needs_person`` "this should have come to a person" (with the semantic-triage ``label`` of
# who: medical, personal...); ``no_person_needed`` "this did not need a person".
FLAG_KINDS = ("bot", "needs_person", "no_person_needed")


class MessageFlag(Base):
    """A fan message flagged for the operators; the review queue's collector reads rows with
    ``status == 'new'`` (the bot's training data for ``bot``, triage's for the other kinds)."""

    __tablename__ = "message_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"),
                                            index=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(24), default="bot", server_default="bot")
    label: Mapped[str | None] = mapped_column(String(32))  # needs_person: a triage label
    status: Mapped[str] = mapped_column(String(16), default="new")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedResponse(Base):
    """A reusable reply; ``{first_name}``, ``{agent_name}`` are filled in when used."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
