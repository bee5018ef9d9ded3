"""What a report asks for: a date range in the venue's time zone and optional filters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from api.enums import Channel

# One report covers at most a year (the per-day table is built from one row per day).
MAX_DAYS = 366


class BadRange(ValueError):
    """A range that is reversed or too long (422)."""


@dataclass(frozen=True)
class Day:
    """One venue-local day and the UTC instants it starts and ends at (DST-aware)."""

    date: dt.date
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class ReportQuery:
    """Conversations started between ``first`` and ``last`` (venue dates, both included)."""

    first: dt.date
    last: dt.date
    tz: str
    channel: Channel | None = None
    topic: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise BadRange("'to' is before 'from'")
        if (self.last - self.first).days + 1 > MAX_DAYS:
            raise BadRange(f"a report covers at most {MAX_DAYS} days")

    def _midnight(self, day: dt.date) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(self.tz))
        return local.astimezone(dt.UTC)

    @property
    def days(self) -> list[Day]:
        out = []
        day = self.first
        while day <= self.last:
            following = day + dt.timedelta(days=1)
            out.append(Day(day, self._midnight(day), self._midnight(following)))
            day = following
        return out

    @property
    def start(self) -> dt.datetime:
        return self._midnight(self.first)

    @property
    def end(self) -> dt.datetime:
        return self._midnight(self.last + dt.timedelta(days=1))

    def filters(self) -> dict[str, str | None]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(),
                "channel": self.channel.value if self.channel else None, "topic": self.topic,
                "language": self.language, "timezone": self.tz}
