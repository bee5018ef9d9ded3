"""Pure reply builders: facts + answer templates + the fan's words + the clock → texts.

Nothing here talks to Rasa: the actions in ``actions.actions`` read the tracker, call one of these
and hand the texts to the dispatcher, so every answer can be tested as a plain function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import calendar
from .answers import NOT_IN_YOUR_LANGUAGE, Answers
from .calendar import DateQuery, Night, NightStatus, QueryKind
from .venue import WEEKDAYS, SpecialEvent, Text, Venue, WeeklyNight, long_date, weekday_name

# A weekly night without residents in the fact sheet.
_GUEST_DJS = Text({"en": "guest DJs", "es": "DJs invitados", "de": "Gast-DJs"})


class _InEnglish:
    """The texts of one turn that fell back to English, and whether the fan was told."""

    def __init__(self) -> None:
        self.texts: set[str] = set()
        self.told = False


@dataclass(frozen=True)
class Context:
    """What every reply builder needs: the facts, the texts, the moment and the language.

    One context per turn: it remembers which of its texts fell back to English, so the fan is
    told once (``with_language_notice``)."""

    venue: Venue
    answers: Answers
    now: dt.datetime
    language: str = "en"
    _in_english: _InEnglish = field(default_factory=_InEnglish, compare=False, repr=False)

    def facts(self, language: str | None = None) -> dict[str, str]:
        """The fact sheet's facts in ``language`` (default: the fan's)."""
        return self.venue.template_facts(language or self.language)

    def values(self, language: str, values: dict[str, Any]) -> dict[str, Any]:
        """What a template in ``language`` is filled with: the facts in that language, and the
        answer's own values with dates and ``Text`` (a genre) written in it too."""
        written = {name: _written_in(value, language) for name, value in values.items()}
        return {**self.facts(language), **written}

    def say(self, key: str, **values: Any) -> str:
        """Render ``key``; facts and dates are written in the language of the template actually
        used (an answer that falls back to English says its facts in English too)."""
        language = self.answers.language_for(key, self.language)
        text = self.answers.render(key, language, self.values(language, values))
        if language != self.language:
            self._in_english.texts.add(text)
        return text

    def with_language_notice(self, texts: list[str]) -> list[str]:
        """The texts the fan gets: the first one that fell back to English (the fan's language
        has no text for it yet) is preceded by one line in their language saying so, once per
        turn. No line without a ``not_in_your_language`` text in that language."""
        told = self._in_english
        if told.told or not self.answers.has_text(NOT_IN_YOUR_LANGUAGE, self.language):
            return texts
        out = []
        for text in texts:
            if not told.told and text in told.texts:
                told.told = True
                notice = self.answers.render(NOT_IN_YOUR_LANGUAGE, self.language, self.facts())
                text = f"{notice}\n{text}"
            out.append(text)
        return out

    @property
    def off_season_now(self) -> bool:
        return not calendar.in_season(self.venue, self.now)

    def with_season_note(self, key: str, texts: list[str]) -> list[str]:
        if self.off_season_now and self.answers.has_season_note(key):
            return texts + [self.say("season_note")]
        return texts


def _written_in(value: Any, language: str) -> Any:
    if isinstance(value, dt.date):
        return long_date(value, language)
    if isinstance(value, Text):
        return value.in_(language)
    return value


def fact_answer(ctx: Context, key: str) -> list[str]:
    """A plain fact answer (dress code, lockers, ...), with the reopening date when closed."""
    return ctx.with_season_note(key, [ctx.say(key)])


def whats_on(ctx: Context, text: str, event_names: Iterable[str] = ()) -> list[str]:
    named = _named_event_or_night(ctx.venue, text, event_names)
    if named is not None:
        return _describe_named(ctx, named)
    query = calendar.resolve(text, ctx.now)
    if query.kind is QueryKind.DATES:
        return _describe_days(ctx, query.days)
    if query.kind is QueryKind.WEEKDAY:
        return _describe_weekday(ctx, query.weekday or "")
    return ctx.with_season_note("whats_on_overview", [ctx.say("whats_on_overview")])


def ticket_prices(ctx: Context, text: str, event_names: Iterable[str] = ()) -> list[str]:
    named = _named_event_or_night(ctx.venue, text, event_names)
    if isinstance(named, SpecialEvent):
        return [ctx.say("ticket_prices_date_event", **_event_values(ctx, named))]
    if isinstance(named, WeeklyNight):
        return _weekday_prices(ctx, named.weekday)
    query = calendar.resolve(text, ctx.now)
    if query.kind is QueryKind.DATES:
        replies = []
        for day in query.days:
            night = calendar.night_on(ctx.venue, day)
            if night.status is NightStatus.EVENT and night.event is not None:
                values = _event_values(ctx, night.event)
                replies.append(ctx.say("ticket_prices_date_event", **values))
            elif night.status is NightStatus.WEEKLY:
                replies.append(ctx.say("ticket_prices_date_weekly", **_night_values(ctx, night)))
            else:
                replies.append(_describe_night(ctx, night))
        return replies
    if query.kind is QueryKind.WEEKDAY:
        return _weekday_prices(ctx, query.weekday or "")
    return ctx.with_season_note("ticket_prices_overview", [ctx.say("ticket_prices_overview")])


def are_you_open(ctx: Context, text: str) -> list[str]:
    """"Are you open tonight?": yes with the night, or closed with when we open next."""
    query = calendar.resolve(text, ctx.now)
    if query.kind is QueryKind.WEEKDAY:
        return _describe_weekday(ctx, query.weekday or "")
    days = query.days if query.kind is QueryKind.DATES else (calendar.operating_day(ctx.now),)
    replies = []
    for day in days:
        night = calendar.night_on(ctx.venue, day)
        values = {"day": day}
        if night.status is NightStatus.OFF_SEASON:
            replies.append(ctx.say("are_you_open_off_season", **values))
        elif night.status is NightStatus.CLOSED_DAY:
            replies.append(ctx.say("are_you_open_closed_day", weekday=night.weekday.capitalize(),
                                   **_weekday_names(night.weekday),
                                   next_open=_next_open_sentence(ctx, day), **values))
        else:
            replies.append(_describe_night(ctx, night))
    return replies


def opening_hours(ctx: Context, text: str) -> list[str]:
    """The hours, plus what is on (or that we're closed) when the fan names a night."""
    replies = [ctx.say("opening_hours")]
    query = calendar.resolve(text, ctx.now)
    if query.kind is QueryKind.DATES:
        for day in query.days:
            night = calendar.night_on(ctx.venue, day)
            if not night.is_open:
                replies.append(_describe_night(ctx, night))
        return replies
    return ctx.with_season_note("opening_hours", replies)


def lost_property_summary(ctx: Context, report: dict[str, str]) -> str:
    return ctx.say("lost_property_received", **report)


# --- helpers ---------------------------------------------------------------------------------


def _named_event_or_night(venue: Venue, text: str, event_names: Iterable[str]):
    candidates = list(event_names)
    for name in candidates:
        found = venue.find_event(name) or venue.find_night(name)
        if found is not None:
            return found
    lowered = text.lower()
    for night in venue.weekly_nights.values():
        if night.name.lower() in lowered or night.name.lower().replace("&", "and") in lowered:
            return night
    for event in venue.special_events:
        key_words = [w for w in event.name.lower().split() if not w.isdigit() and w != "party"]
        if key_words and all(word in lowered for word in key_words if word != "aurora"):
            return event
    return None


def _describe_named(ctx: Context, named) -> list[str]:
    if isinstance(named, SpecialEvent):
        return [ctx.say("event_details", **_event_values(ctx, named))]
    values = _weekly_values(ctx, named)
    return ctx.with_season_note("night_details", [ctx.say("night_details", **values)])


def _describe_weekday(ctx: Context, weekday: str) -> list[str]:
    return _weekday_answer(ctx, weekday, "weekday_night")


def _weekday_prices(ctx: Context, weekday: str) -> list[str]:
    return _weekday_answer(ctx, weekday, "ticket_prices_weekday")


def _weekday_answer(ctx: Context, weekday: str, key: str) -> list[str]:
    """A weekday's weekly night told with answer ``key``, or that we never open that day."""
    night = ctx.venue.weekly_nights.get(weekday)
    if night is None or weekday in ctx.venue.closed_on:
        key, values = "weekday_closed", _weekday_names(weekday)
    else:
        values = _weekly_values(ctx, night)
    return ctx.with_season_note(key, [ctx.say(key, **values)])


def _describe_days(ctx: Context, days: tuple[dt.date, ...]) -> list[str]:
    nights = [calendar.night_on(ctx.venue, day) for day in days]
    if len(nights) > 1 and all(night.status is NightStatus.OFF_SEASON for night in nights):
        return [ctx.say("range_off_season", first=days[0], last=days[-1])]
    return [_describe_night(ctx, night) for night in nights]


def _describe_night(ctx: Context, night: Night) -> str:
    day = night.day
    if night.status is NightStatus.EVENT and night.event is not None:
        return ctx.say("night_event", **_event_values(ctx, night.event))
    if night.status is NightStatus.WEEKLY:
        return ctx.say("night_weekly", **_night_values(ctx, night))
    if night.status is NightStatus.CLOSED_DAY:
        return ctx.say("night_closed_day", day=day, weekday=night.weekday.capitalize(),
                       **_weekday_names(night.weekday),
                       next_open=_next_open_sentence(ctx, night.day))
    return ctx.say("night_off_season", day=day)


def _event_values(ctx: Context, event: SpecialEvent) -> dict[str, Any]:
    weekday = WEEKDAYS[event.date.weekday()]
    return {
        "day": event.date,
        "event_name": event.name,
        "line_up": ", ".join(event.line_up),
        "ticket_online": event.ticket_online,
        "ticket_door": event.ticket_door,
        "closing": ctx.venue.closing_time(weekday),
    }


def _weekday_names(weekday: str) -> dict[str, str]:
    """A weekday for the templates: ``weekday_cap`` ("Tuesday"), ``weekday_es`` ("martes"),
    ``weekday_de`` ("Dienstag")."""
    return {"weekday_cap": weekday.capitalize(), "weekday_es": weekday_name(weekday, "es"),
            "weekday_de": weekday_name(weekday, "de")}


def _weekly_values(ctx: Context, night: WeeklyNight) -> dict[str, Any]:
    return {
        "weekday": night.weekday,
        **_weekday_names(night.weekday),
        "night_name": night.name,
        "genre": night.genre,
        "residents": " & ".join(night.residents) or _GUEST_DJS,
        "ticket_online": night.ticket_online,
        "ticket_door": night.ticket_door,
        "closing": ctx.venue.closing_time(night.weekday),
    }


def _night_values(ctx: Context, night: Night) -> dict[str, Any]:
    assert night.weekly is not None
    return {**_weekly_values(ctx, night.weekly), "day": night.day}


def _next_open_sentence(ctx: Context, after: dt.date) -> str:
    day = after + dt.timedelta(days=1)
    for _ in range(800):
        night = calendar.night_on(ctx.venue, day)
        if night.is_open:
            name = night.event.name if night.event else night.weekly.name  # type: ignore[union-attr]
            return ctx.say("next_open", next_day=day, next_name=name)
        day += dt.timedelta(days=1)
    return ""


__all__ = [
    "Context", "DateQuery", "are_you_open", "fact_answer", "lost_property_summary",
    "opening_hours", "ticket_prices", "whats_on",
]
