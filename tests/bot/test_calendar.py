"""Date resolution with a frozen clock (Europe/Madrid)."""

from __future__ import annotations

import datetime as dt

import pytest

from actions import calendar
from actions.calendar import NightStatus, QueryKind
from actions.venue import Venue

from .conftest import IN_SEASON_NOW, MADRID, OFF_SEASON_NOW, ROOT

THU_AFTERNOON = OFF_SEASON_NOW  # Thursday 26 November 2026, 16:00


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("who is playing on 17 July 2027", [dt.date(2027, 7, 17)]),
        ("line up 17th of july?", [dt.date(2027, 7, 17)]),
        ("what's on july 17", [dt.date(2027, 7, 17)]),
        ("whats on 17/07/2027", [dt.date(2027, 7, 17)]),
        ("whats on 17/7", [dt.date(2027, 7, 17)]),
        ("2027-08-15 party?", [dt.date(2027, 8, 15)]),
        ("que hay el 15 de agosto", [dt.date(2027, 8, 15)]),
        ("are you open tonight?", [dt.date(2026, 11, 26)]),
        ("open 2nite??", [dt.date(2026, 11, 26)]),
        ("esta noche abris?", [dt.date(2026, 11, 26)]),
        ("what about tomorrow", [dt.date(2026, 11, 27)]),
        ("what's on this Saturday", [dt.date(2026, 11, 28)]),
        ("this thursday", [dt.date(2026, 11, 26)]),
        ("next Friday", [dt.date(2026, 12, 4)]),
        ("el próximo viernes", [dt.date(2026, 12, 4)]),
        ("this weekend", [dt.date(2026, 11, 27), dt.date(2026, 11, 28), dt.date(2026, 11, 29)]),
        ("are you open on christmas eve", [dt.date(2026, 12, 24)]),
        ("NYE party?", [dt.date(2026, 12, 31)]),
        # a date that has passed this year means next year's
        ("what's on 1 june", [dt.date(2027, 6, 1)]),
    ],
)
def test_dates_resolve_against_the_frozen_clock(text: str, expected: list[dt.date]) -> None:
    query = calendar.resolve(text, THU_AFTERNOON)
    assert query.kind is QueryKind.DATES
    assert list(query.days) == expected


@pytest.mark.parametrize(
    ("text", "weekday"),
    [("how much is Friday?", "friday"), ("what's on Wednesday?", "wednesday"),
     ("wat about weds", "wednesday"), ("cuanto cuesta el sabado", "saturday"),
     ("saterday line up", "saturday")],
)
def test_a_bare_weekday_means_the_weekly_night(text: str, weekday: str) -> None:
    query = calendar.resolve(text, THU_AFTERNOON)
    assert query.kind is QueryKind.WEEKDAY
    assert query.weekday == weekday


def test_no_date_in_text() -> None:
    assert calendar.resolve("how much are lockers", THU_AFTERNOON).kind is QueryKind.NONE


def test_impossible_dates_are_ignored() -> None:
    assert calendar.resolve("31/02 party", THU_AFTERNOON).kind is QueryKind.NONE


def test_tonight_at_4am_is_the_night_still_running() -> None:
    four_am_saturday = dt.datetime(2027, 7, 17, 4, 0, tzinfo=MADRID)
    assert calendar.resolve("what's on tonight", four_am_saturday).days == (dt.date(2027, 7, 16),)
    eight_am = four_am_saturday.replace(hour=8)
    assert calendar.resolve("what's on tonight", eight_am).days == (dt.date(2027, 7, 17),)


def test_this_weekday_from_inside_the_season() -> None:
    # IN_SEASON_NOW is Thursday 15 July 2027 02:00, i.e. still Wednesday 14's night.
    assert calendar.resolve("this saturday", IN_SEASON_NOW).days == (dt.date(2027, 7, 17),)


@pytest.fixture(scope="module")
def venue() -> Venue:
    return Venue.load(ROOT / "data" / "venue.yml")


@pytest.mark.parametrize(
    ("day", "status"),
    [
        (dt.date(2026, 11, 26), NightStatus.OFF_SEASON),
        (dt.date(2027, 5, 27), NightStatus.OFF_SEASON),  # the day before the opening party
        (dt.date(2027, 5, 28), NightStatus.EVENT),  # opening party
        (dt.date(2027, 6, 1), NightStatus.CLOSED_DAY),  # a Tuesday in the season
        (dt.date(2027, 6, 2), NightStatus.WEEKLY),  # a Wednesday
        (dt.date(2027, 10, 9), NightStatus.EVENT),  # closing party
        (dt.date(2027, 10, 10), NightStatus.OFF_SEASON),
    ],
)
def test_night_on_follows_the_season_the_closed_days_and_events(venue, day, status) -> None:
    assert calendar.night_on(venue, day).status is status


def test_special_events_override_the_weekly_night(venue) -> None:
    night = calendar.night_on(venue, dt.date(2027, 7, 17))
    assert night.event is not None and night.event.name == "Aurora 20th Anniversary"


# --- Spanish: the same days as the English words -------------------------------------------------


@pytest.mark.parametrize(
    ("spanish", "english", "expected"),
    [
        ("el sábado que viene", "next saturday", dt.date(2026, 12, 5)),
        ("¿abrís el sabado que viene?", "are you open next saturday?", dt.date(2026, 12, 5)),
        ("el sábado próximo", "next saturday", dt.date(2026, 12, 5)),
        ("esta noche", "tonight", dt.date(2026, 11, 26)),
        ("¿qué hay esta noche?", "what's on tonight?", dt.date(2026, 11, 26)),
        ("el 12 de agosto", "12 august", dt.date(2027, 8, 12)),
        ("el 12 de agosto de 2027", "12 august 2027", dt.date(2027, 8, 12)),
        ("el 1º de agosto", "the 1st of august", dt.date(2027, 8, 1)),
        ("Nochevieja", "New Year's Eve", dt.date(2026, 12, 31)),
        ("¿hay fiesta de fin de año?", "is there a new year's eve party?", dt.date(2026, 12, 31)),
        ("mañana", "tomorrow", dt.date(2026, 11, 27)),
        ("¿y mañana por la noche?", "and tomorrow night?", dt.date(2026, 11, 27)),
        ("hoy", "today", dt.date(2026, 11, 26)),
        ("¿Hoy abrís?", "are you open today?", dt.date(2026, 11, 26)),
        ("pasado mañana", "the day after tomorrow", dt.date(2026, 11, 28)),
    ],
)
def test_spanish_dates_resolve_like_the_english_ones(spanish: str, english: str,
                                                     expected: dt.date) -> None:
    es, en = calendar.resolve(spanish, THU_AFTERNOON), calendar.resolve(english, THU_AFTERNOON)
    assert es.kind is QueryKind.DATES and en.kind is QueryKind.DATES
    assert es.days == en.days == (expected,)


@pytest.mark.parametrize(("spanish", "english"), [
    ("esta noche", "tonight"), ("hoy", "today"), ("mañana", "tomorrow"),
    ("el sábado que viene", "next saturday"), ("pasado mañana", "the day after tomorrow"),
])
def test_spanish_night_words_at_2am_are_the_running_night_too(spanish: str,
                                                                english: str) -> None:
    assert calendar.resolve(spanish, IN_SEASON_NOW).days == \
        calendar.resolve(english, IN_SEASON_NOW).days


@pytest.mark.parametrize("text", ["abrís hasta las 6 de la mañana?", "esta mañana",
                                  "¿se puede entrar por la mañana?"])
def test_a_morning_is_not_tomorrow(text: str) -> None:
    assert calendar.resolve(text, THU_AFTERNOON).kind is QueryKind.NONE


# --- German: the same days as the English words --------------------------------------------------


@pytest.mark.parametrize(
    ("german", "english", "expected"),
    [
        ("heute", "today", dt.date(2026, 11, 26)),
        ("habt ihr heute offen?", "are you open today?", dt.date(2026, 11, 26)),
        ("heute Abend", "tonight", dt.date(2026, 11, 26)),
        ("was läuft heute Nacht?", "what's on tonight?", dt.date(2026, 11, 26)),
        ("morgen", "tomorrow", dt.date(2026, 11, 27)),
        ("und morgen Abend?", "and tomorrow night?", dt.date(2026, 11, 27)),
        ("übermorgen", "the day after tomorrow", dt.date(2026, 11, 28)),
        ("uebermorgen", "the day after tomorrow", dt.date(2026, 11, 28)),
        ("diesen Samstag", "this saturday", dt.date(2026, 11, 28)),
        ("am kommenden Freitag", "this friday", dt.date(2026, 11, 27)),
        ("nächsten Samstag", "next saturday", dt.date(2026, 12, 5)),
        ("habt ihr am nächsten Samstag offen?", "are you open next saturday?",
         dt.date(2026, 12, 5)),
        ("naechsten Samstag", "next saturday", dt.date(2026, 12, 5)),
        ("Samstag nächste Woche", "saturday next week", dt.date(2026, 12, 5)),
        ("nächste Woche Samstag", "next saturday", dt.date(2026, 12, 5)),
        ("15. August", "15 august", dt.date(2027, 8, 15)),
        ("was läuft am 15. August 2027?", "what's on 15 august 2027?", dt.date(2027, 8, 15)),
        ("am 1. Mai", "1 may", dt.date(2027, 5, 1)),
        ("15.08.2027", "15/08/2027", dt.date(2027, 8, 15)),
        ("am 15.8.", "15/8", dt.date(2027, 8, 15)),
        ("Silvester", "New Year's Eve", dt.date(2026, 12, 31)),
        ("gibt es eine Silvesterparty?", "is there a new year's eve party?",
         dt.date(2026, 12, 31)),
        ("Heiligabend", "christmas eve", dt.date(2026, 12, 24)),
        ("Weihnachten", "christmas", dt.date(2026, 12, 25)),
        ("Neujahr", "new year's day", dt.date(2027, 1, 1)),
    ],
)
def test_german_dates_resolve_like_the_english_ones(german: str, english: str,
                                                    expected: dt.date) -> None:
    de, en = calendar.resolve(german, THU_AFTERNOON), calendar.resolve(english, THU_AFTERNOON)
    assert de.kind is QueryKind.DATES and en.kind is QueryKind.DATES
    assert de.days == en.days == (expected,)


@pytest.mark.parametrize("german", ["am Wochenende", "was läuft dieses Wochenende?", "Wochenende"])
def test_the_german_weekend_is_this_weekend(german: str) -> None:
    assert calendar.resolve(german, THU_AFTERNOON).days == \
        calendar.resolve("this weekend", THU_AFTERNOON).days


@pytest.mark.parametrize(
    ("text", "weekday"),
    [("Samstag", "saturday"), ("was kostet es am Samstag?", "saturday"),
     ("wer legt samstags auf", "saturday"), ("Samstagabend", "saturday"),
     ("Sonnabend", "saturday"), ("was läuft am Mittwoch", "wednesday"),
     ("Dienstag?", "tuesday"), ("Freitagnacht", "friday")],
)
def test_a_bare_german_weekday_means_the_weekly_night(text: str, weekday: str) -> None:
    query = calendar.resolve(text, THU_AFTERNOON)
    assert query.kind is QueryKind.WEEKDAY
    assert query.weekday == weekday


@pytest.mark.parametrize(("german", "english"), [
    ("heute Abend", "tonight"), ("heute", "today"), ("morgen", "tomorrow"),
    ("nächsten Samstag", "next saturday"), ("übermorgen", "the day after tomorrow"),
])
def test_german_night_words_at_2am_are_the_running_night_too(german: str, english: str) -> None:
    assert calendar.resolve(german, IN_SEASON_NOW).days == \
        calendar.resolve(english, IN_SEASON_NOW).days


@pytest.mark.parametrize("text", ["guten Morgen!", "habt ihr bis 7 Uhr morgens offen?",
                                  "kann man am Morgen noch rein?", "jeden Morgen",
                                  "Einlass um 23.30 Uhr?"])
def test_a_german_morning_or_time_is_not_a_date(text: str) -> None:
    assert calendar.resolve(text, THU_AFTERNOON).kind is QueryKind.NONE


def test_this_morning_in_german_is_today_not_tomorrow() -> None:
    assert calendar.resolve("heute Morgen", THU_AFTERNOON).days == (dt.date(2026, 11, 26),)
