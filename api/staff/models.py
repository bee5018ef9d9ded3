"""Staff members (seeded from the project's copy of staff.yml)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import JSONType, enum_column
from api.db import Base, UTCDateTime, utcnow
from api.enums import Presence, StaffRole


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole), default=StaffRole.staff)
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    shifts: Mapped[list[str]] = mapped_column(JSONType, default=list)
    presence: Mapped[Presence] = mapped_column(enum_column(Presence), default=Presence.offline)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Carried in every bearer token; raising it (sign-out, new password) ends them all.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Messenger persona of this person on the Page (created on their first Messenger reply).
    persona_id: Mapped[str | None] = mapped_column(String(64))
    last_assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
