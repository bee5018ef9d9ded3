"""Dates in fans' words, resolved against the venue's calendar (Europe/Madrid).

Rasa's Duckling extractor needs a server this project cannot run, so dates are resolved here with
plain rules, in English, Spanish and German:

- "tonight" / "today" / "hoy" / "esta noche" / "heute" / "heute Abend" / "heute Nacht": the night
  that is on now. Before 07:00 that is still the night that began yesterday evening (a fan at
  4 a.m. asking "what's on tonight" is inside it).
- "tomorrow" / "mañana" / "morgen": the day after that ("por la mañana", "esta mañana", "am
  Morgen", "guten Morgen" are mornings, not tomorrow); "the day after tomorrow" / "pasado mañana"
  / "übermorgen": the day after that.
- "this Friday" (or "este viernes", "diesen Freitag", "kommenden Freitag"): the coming Friday,
  today included.
- "next Friday" (or "el próximo viernes", "el viernes que viene", "el viernes próximo",
  "nächsten Freitag", "Freitag nächste Woche", "nächste Woche Freitag"): one week after "this
  Friday".
- "this weekend" (or "este finde", "am Wochenende", "dieses Wochenende"): this week's Friday,
  Saturday and Sunday still to come.
- holidays: "Christmas Eve", "New Year's Eve" / "Nochevieja" / "fin de año" / "Silvester",
  "Heiligabend", "Weihnachten", "Neujahr", ...
- explicit dates: "17 July 2027", "17th of July", "July 17", "17/07/2027", "17/7", "2027-07-17",
  "17 de julio", "1º de agosto", "17. Juli", "17.07.2027", "17.7."; without a year, the next such
  date from today.
- a bare weekday ("how much is Friday?", "am Samstag", "samstags") is not a date: it means that
  weekday's weekly night.

Every answer repeats the resolved date so a fan can see what was understood.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum

from .venue import WEEKDAYS, SpecialEvent, Venue, WeeklyNight

NIGHT_ROLLOVER_HOUR = 7  # the latest closing time: before it, "tonight" is still last night

_WEEKDAY_WORDS = {
    "monday": ("monday", "mon", "mondays", "lunes", "munday", "monady"),
    "tuesday": ("tuesday", "tue", "tues", "tuesdays", "martes", "tusday", "teusday"),
    "wednesday": (
        "wednesday", "wed", "weds", "wednesdays", "miercoles", "miércoles", "wensday",
        "wendsday", "wednsday", "wedsday",
    ),
    "thursday": ("thursday", "thu", "thur", "thurs", "thursdays", "jueves", "thrusday", "thirsday"),
    "friday": ("friday", "fri", "fridays", "viernes", "firday", "fryday", "frday"),
    "saturday": (
        "saturday", "sat", "saturdays", "sabado", "sábado", "saterday", "satruday", "saturaday",
    ),
    "sunday": ("sunday", "sun", "sundays", "domingo", "sundy", "sundai"),
}
# German: the day ("Samstag"), every such day ("samstags") and its evening or night written as one
# word ("Samstagabend", "Samstagnacht"). Not the two-letter abbreviations ("Do", "So", "Mi"): they
# are everyday words.
_GERMAN_WEEKDAYS = {
    "monday": ("montag",), "tuesday": ("dienstag",), "wednesday": ("mittwoch",),
    "thursday": ("donnerstag",), "friday": ("freitag",), "saturday": ("samstag", "sonnabend"),
    "sunday": ("sonntag",),
}
for _day, _stems in _GERMAN_WEEKDAYS.items():
    _WEEKDAY_WORDS[_day] += tuple(
        stem + ending for stem in _stems for ending in ("", "s", "abend", "abends", "nacht")
    )
WEEKDAY_BY_WORD = {word: day for day, words in _WEEKDAY_WORDS.items() for word in words}

_MONTH_WORDS = {
    1: ("january", "jan", "enero", "januar", "jänner"),
    2: ("february", "feb", "febrero", "februar"),
    3: ("march", "mar", "marzo", "märz", "maerz"),
    4: ("april", "apr", "abril"),
    5: ("may", "mayo", "mai"),
    6: ("june", "jun", "junio", "juni"),
    7: ("july", "jul", "julio", "juli"),
    8: ("august", "aug", "agosto"),
    9: ("september", "sep", "sept", "septiembre", "setiembre"),
    10: ("october", "oct", "octubre", "oktober", "okt"),
    11: ("november", "nov", "noviembre"),
    12: ("december", "dec", "diciembre", "dezember", "dez"),
}
MONTH_BY_WORD = {word: month for month, words in _MONTH_WORDS.items() for word in words}

_WEEKDAY_RE = "|".join(sorted(map(re.escape, WEEKDAY_BY_WORD), key=len, reverse=True))
_MONTH_RE = "|".join(sorted(map(re.escape, MONTH_BY_WORD), key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th|º|°|ª|\.)?"  # "17th", "1º", "17." (German)

_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
# German "17.07.2027" / "17.7.": the month's dot is required, so "23.30 Uhr" is not a date.
_DOTTED = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2}(?!\d))?")
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}}){_ORD}\s+(?:of\s+|de\s+)?({_MONTH_RE})\b\.?(?:,?\s+(?:de\s+)?(\d{{4}}))?"
)
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}}){_ORD}\b(?:,?\s+(\d{{4}}))?")
_THIS_WEEKDAY = re.compile(
    rf"\b(?:this|este|esta|coming|diese[nmr]?|kommende[nmr]?)\s+({_WEEKDAY_RE})\b"
)
_NEXT_GERMAN = r"n(?:ä|ae)chste[nmrs]?"  # "nächsten", "nächster", "naechsten"
_NEXT_WEEKDAY = re.compile(
    rf"\b(?:next|(?:el\s+)?pr[oó]ximo|(?:la\s+)?pr[oó]xima|{_NEXT_GERMAN})\s+({_WEEKDAY_RE})\b"
    rf"|\b({_WEEKDAY_RE})\s+(?:que\s+viene|pr[oó]xim[oa]|next\s+week|{_NEXT_GERMAN}\s+woche)\b"
    rf"|\b{_NEXT_GERMAN}\s+woche\s+(?:am\s+)?({_WEEKDAY_RE})\b"
)
_BARE_WEEKDAY = re.compile(rf"\b({_WEEKDAY_RE})\b")
_TONIGHT = re.compile(
    r"\b(?:tonight|tonite|2nite|tnite|today|this\s+evening|hoy|esta\s+noche|right\s+now"
    r"|heute|diese\s+nacht)\b"
)
_DAY_AFTER_TOMORROW = re.compile(
    r"\b(?:(?:the\s+)?day\s+after\s+(?:tomorrow|tmrw|tmr|2morrow)|pasado\s+ma[nñ]ana"
    r"|(?:ü|ue)bermorgen)\b"
)
# "mañana" is tomorrow, "la mañana" / "esta mañana" a morning ("a las 6 de la mañana"); "morgen"
# is tomorrow, "am Morgen", "guten Morgen", "jeden Morgen" a morning ("heute Morgen" is today's).
_TOMORROW = re.compile(
    r"\b(?:tomorrow|tmrw|tmr|tomoz|2morrow)\b|(?<!\bla\s)(?<!\besta\s)\bma[nñ]ana\b"
    r"|(?<!\bam\s)(?<!\bguten\s)(?<!\bjeden\s)(?<!\bheute\s)\bmorgen\b"
)
_HOLIDAYS = (  # (pattern, month, day)
    (re.compile(r"\b(?:christmas|xmas)\s+eve\b|\bnochebuena\b|\bheilig(?:abend|er\s+abend)\b"),
     12, 24),
    (re.compile(r"\b(?:christmas|xmas)(?:\s+day)?\b|\bnavidad\b|\bweihnachten\b"), 12, 25),
    # "Silvester", "Silvesterparty"
    (re.compile(r"\bnew\s+year'?s?\s+eve\b|\bnye\b|\bnochevieja\b|\bfin\s+de\s+a[nñ]o\b"
                r"|\bsilvester"), 12, 31),
    (re.compile(r"\bnew\s+year'?s?(?:\s+day)?\b|\ba[nñ]o\s+nuevo\b|\bneujahr(?:stag)?\b"), 1, 1),
)
_WEEKEND = re.compile(
    r"\b(?:this\s+)?weekend\b|\bfin(?:de| de semana)\b|\bfinde\b|\bwochenende\b"
)


class QueryKind(str, Enum):
    DATES = "dates"  # one or more calendar days ("tonight", "17 July", "this weekend")
    WEEKDAY = "weekday"  # a bare weekday: that weekday's weekly night
    NONE = "none"


@dataclass(frozen=True)
class DateQuery:
    kind: QueryKind
    days: tuple[dt.date, ...] = ()
    weekday: str | None = None
    phrase: str = ""  # how the fan put it: "tonight", "next friday"


def operating_day(now: dt.datetime) -> dt.date:
    """The calendar day whose night is on at ``now`` (a night runs until 07:00 next morning)."""
    if now.hour < NIGHT_ROLLOVER_HOUR:
        return now.date() - dt.timedelta(days=1)
    return now.date()


def resolve(text: str, now: dt.datetime) -> DateQuery:
    """Resolve the first date expression in ``text`` relative to ``now`` (aware, local time)."""
    lowered = text.lower()
    today = operating_day(now)

    explicit = _explicit_date(lowered, now.date()) or _holiday(lowered, now.date())
    if explicit is not None:
        day, phrase = explicit
        return DateQuery(QueryKind.DATES, (day,), phrase=phrase)
    if match := _NEXT_WEEKDAY.search(lowered):
        weekday = WEEKDAY_BY_WORD[next(word for word in match.groups() if word)]
        day = _coming(today, weekday) + dt.timedelta(days=7)
        return DateQuery(QueryKind.DATES, (day,), phrase=match.group(0))
    if match := _THIS_WEEKDAY.search(lowered):
        weekday = WEEKDAY_BY_WORD[match.group(1)]
        return DateQuery(QueryKind.DATES, (_coming(today, weekday),), phrase=match.group(0))
    if match := _TONIGHT.search(lowered):
        return DateQuery(QueryKind.DATES, (today,), phrase=match.group(0))
    if match := _DAY_AFTER_TOMORROW.search(lowered):
        return DateQuery(QueryKind.DATES, (today + dt.timedelta(days=2),), phrase=match.group(0))
    if match := _TOMORROW.search(lowered):
        return DateQuery(QueryKind.DATES, (today + dt.timedelta(days=1),), phrase=match.group(0))
    if match := _WEEKEND.search(lowered):
        days = tuple(
            sorted({_coming(today, weekday) for weekday in ("friday", "saturday", "sunday")})
        )
        # The coming Sunday can come before the coming Friday (asked on a Sunday): keep one week.
        days = tuple(day for day in days if (day - days[0]).days < 3)
        return DateQuery(QueryKind.DATES, days, phrase=match.group(0))
    if match := _BARE_WEEKDAY.search(lowered):
        return DateQuery(QueryKind.WEEKDAY, weekday=WEEKDAY_BY_WORD[match.group(1)],
                         phrase=match.group(0))
    return DateQuery(QueryKind.NONE)


def _coming(today: dt.date, weekday: str) -> dt.date:
    delta = (WEEKDAYS.index(weekday) - today.weekday()) % 7
    return today + dt.timedelta(days=delta)


def _explicit_date(text: str, today: dt.date) -> tuple[dt.date, str] | None:
    candidates: list[tuple[int, int, int | None, str]] = []  # (day, month, year, phrase)
    if match := _ISO.search(text):
        candidates.append((int(match.group(3)), int(match.group(2)), int(match.group(1)),
                           match.group(0)))
    if match := _DAY_MONTH.search(text):
        year = int(match.group(3)) if match.group(3) else None
        candidates.append((int(match.group(1)), MONTH_BY_WORD[match.group(2)], year,
                           match.group(0)))
    if match := _MONTH_DAY.search(text):
        year = int(match.group(3)) if match.group(3) else None
        candidates.append((int(match.group(2)), MONTH_BY_WORD[match.group(1)], year,
                           match.group(0)))
    for pattern in (_NUMERIC, _DOTTED):
        if match := pattern.search(text):
            # Day first, as written in Spain, Germany and the UK ("17/07", "17.07.").
            year = match.group(3)
            full_year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
            candidates.append((int(match.group(1)), int(match.group(2)), full_year,
                               match.group(0)))
    for day, month, year, phrase in candidates:
        resolved = _build_date(day, month, year, today)
        if resolved is not None:
            return resolved, phrase.strip()
    return None


def _holiday(text: str, today: dt.date) -> tuple[dt.date, str] | None:
    for pattern, month, day in _HOLIDAYS:
        if match := pattern.search(text):
            resolved = _build_date(day, month, None, today)
            if resolved is not None:
                return resolved, match.group(0)
    return None


def _build_date(day: int, month: int, year: int | None, today: dt.date) -> dt.date | None:
    try:
        if year is not None:
            return dt.date(year, month, day)
        candidate = dt.date(today.year, month, day)
        if candidate < today:
            candidate = dt.date(today.year + 1, month, day)
        return candidate
    except ValueError:
        return None


class NightStatus(str, Enum):
    EVENT = "event"  # a special event
    WEEKLY = "weekly"  # the weekday's residency
    CLOSED_DAY = "closed_day"  # a weekday we never open (Tuesday)
    OFF_SEASON = "off_season"


@dataclass(frozen=True)
class Night:
    day: dt.date
    status: NightStatus
    event: SpecialEvent | None = None
    weekly: WeeklyNight | None = None

    @property
    def is_open(self) -> bool:
        return self.status in (NightStatus.EVENT, NightStatus.WEEKLY)

    @property
    def weekday(self) -> str:
        return WEEKDAYS[self.day.weekday()]


def night_on(venue: Venue, day: dt.date) -> Night:
    """What happens at the venue on the night starting on ``day``."""
    event = venue.event_on(day)
    if event is not None:
        return Night(day, NightStatus.EVENT, event=event)
    if not venue.season.contains(day):
        return Night(day, NightStatus.OFF_SEASON)
    weekday = WEEKDAYS[day.weekday()]
    if weekday in venue.closed_on or weekday not in venue.weekly_nights:
        return Night(day, NightStatus.CLOSED_DAY)
    return Night(day, NightStatus.WEEKLY, weekly=venue.weekly_nights[weekday])


def in_season(venue: Venue, now: dt.datetime) -> bool:
    return venue.season.contains(operating_day(now))
