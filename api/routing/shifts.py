"""Weekly shift windows from staff.yml ("wed-sun 18:00-02:00", "mon,wed-sun 23:00-07:00").

Times are local to the team's zone (Europe/Madrid); a window whose end is not after its start
runs past midnight. Pure functions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHIFT = re.compile(r"^\s*([a-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Shift:
    days: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time

    @property
    def overnight(self) -> bool:
        return self.end <= self.start


def _days(spec: str) -> frozenset[int]:
    out: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            a, b = (DAYS.index(x) for x in part.split("-", 1))
            i = a
            while True:
                out.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
        else:
            out.add(DAYS.index(part))
    return frozenset(out)


@lru_cache(maxsize=256)
def parse(spec: str) -> Shift:
    """Parse one shift; ValueError when it is not ``days HH:MM-HH:MM``."""
    m = SHIFT.match(spec.lower())
    if not m:
        raise ValueError(f"not a shift: {spec!r}")
    try:
        days = _days(m.group(1))
    except ValueError:
        raise ValueError(f"unknown day in shift {spec!r}") from None
    return Shift(days, dt.time(int(m.group(2)), int(m.group(3))),
                 dt.time(int(m.group(4)), int(m.group(5))))


def next_start(shifts: list[str] | tuple[str, ...], now: dt.datetime,
               tz: str = "Europe/Madrid") -> dt.datetime | None:
    """The first shift start strictly after ``now`` (aware, in ``tz``), or None without shifts."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    best: dt.datetime | None = None
    for spec in shifts:
        try:
            shift = parse(spec)
        except ValueError:
            continue
        for offset in range(8):
            day = local.date() + dt.timedelta(days=offset)
            if day.weekday() not in shift.days:
                continue
            start = dt.datetime.combine(day, shift.start, tzinfo=zone)
            if start > local:
                if best is None or start < best:
                    best = start
                break
    return best


def on_shift(shifts: list[str] | tuple[str, ...], now: dt.datetime,
             tz: str = "Europe/Madrid") -> bool:
    """Whether ``now`` falls inside one of the windows."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    for spec in shifts:
        try:
            shift = parse(spec)
        except ValueError:
            continue
        for back in (0, 1):
            day = local.date() - dt.timedelta(days=back)
            if day.weekday() not in shift.days:
                continue
            start = dt.datetime.combine(day, shift.start, tzinfo=zone)
            end_day = day + dt.timedelta(days=1) if shift.overnight else day
            end = dt.datetime.combine(end_day, shift.end, tzinfo=zone)
            if start <= local < end:
                return True
    return False
