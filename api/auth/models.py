"""Sign-in attempts per handle and client address (the lock-out counter)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UTCDateTime


class LoginAttempt(Base):
    """Sign-in attempts for one handle from one client address in the current window.

    An attempt is counted before its password is checked (a success deletes the row), so
    concurrent guesses cannot all pass before the first failure is recorded. Keyed by handle
    *and* address: someone who learns a handle cannot lock its owner out from elsewhere.
    """

    __tablename__ = "login_attempts"

    handle: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
