"""The venue's fact sheet (data/venue.yml), loaded into typed objects.

Everything the bot says about the venue comes from here: change a fact in the YAML and the answer
changes. Loading is explicit (``Venue.load``), never at import time.

A fact said in a sentence is one text or a mapping of forms by language (``{en: ..., es: ...}``,
English required; see the top of data/venue.yml). ``template_facts(language)`` gives every fact in
one language, falling back to English per fact; dates and weekday names are written in it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_LANGUAGE = "en"  # every fact has an English form; the fallback for every other language


class Text(str):
    """Words with forms by language: the string itself is the English form, ``in_`` gives another
    (English when that language has none). Used where a fact's words reach an answer as a value
    (a night's genre), so the answer can pick the form of the language it is written in."""

    forms: Mapping[str, str]

    def __new__(cls, value: Any) -> Text:
        forms = (
            {code: _one_line(form) for code, form in value.items()}
            if isinstance(value, Mapping) else {DEFAULT_LANGUAGE: _one_line(value)}
        )
        text = super().__new__(cls, forms[DEFAULT_LANGUAGE])
        text.forms = forms
        return text

    def in_(self, language: str) -> str:
        return self.forms.get(language) or str(self)


def text_in(value: Any, language: str) -> str:
    """A fact in ``language``: its form in that language when it has one (a mapping of forms by
    language), else its English form; one line."""
    return Text(value).in_(language)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _is_language_code(key: Any) -> bool:
    return isinstance(key, str) and len(key) == 2 and key.isalpha() and key.islower()


def _check_language_forms(node: Any, where: str = "venue") -> None:
    """Every mapping of forms by language (all its keys are language codes) has an English form
    and only one-line texts: a missing English form would crash an answer in front of a fan."""
    if isinstance(node, Mapping):
        if node and all(_is_language_code(key) for key in node):
            if not node.get(DEFAULT_LANGUAGE):
                raise ValueError(f"{where}: a fact with forms by language needs an 'en' form")
            bad = [code for code, form in node.items() if isinstance(form, (Mapping, list))]
            if bad:
                raise ValueError(f"{where}: the {', '.join(bad)} form must be a text")
            return
        for key, value in node.items():
            _check_language_forms(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_language_forms(value, f"{where}[{index}]")


@dataclass(frozen=True)
class WeeklyNight:
    weekday: str
    name: str
    genre: Text  # the English form as a string; ``genre.in_("es")`` for another language
    ticket_online: int
    ticket_door: int
    residents: tuple[str, ...]


@dataclass(frozen=True)
class SpecialEvent:
    date: dt.date
    name: str
    line_up: tuple[str, ...]
    ticket_online: int
    ticket_door: int


@dataclass(frozen=True)
class Season:
    opening_party: dt.date
    closing_party: dt.date
    off_season_message: str
    box_office_hours: str

    def contains(self, day: dt.date) -> bool:
        return self.opening_party <= day <= self.closing_party


@dataclass(frozen=True)
class Venue:
    facts: Mapping[str, Any]  # the raw sheet, for plain one-line facts
    season: Season
    weekly_nights: Mapping[str, WeeklyNight]  # by weekday name
    special_events: tuple[SpecialEvent, ...]
    closed_on: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path) -> Venue:
        with open(path, encoding="utf-8") as handle:
            return cls.from_mapping(yaml.safe_load(handle))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Venue:
        _check_language_forms(raw)
        residents = raw.get("resident_djs", {})
        nights = {
            weekday: WeeklyNight(
                weekday=weekday,
                name=night["name"],
                genre=Text(night["genre"]),
                ticket_online=int(night["ticket_online"]),
                ticket_door=int(night["ticket_door"]),
                residents=tuple(residents.get(night["name"], ())),
            )
            for weekday, night in raw["weekly_nights"].items()
        }
        events = tuple(
            sorted(
                (
                    SpecialEvent(
                        date=_as_date(event["date"]),
                        name=event["name"],
                        line_up=tuple(event["line_up"]),
                        ticket_online=int(event["ticket_online"]),
                        ticket_door=int(event["ticket_door"]),
                    )
                    for event in raw.get("special_events", ())
                ),
                key=lambda event: event.date,
            )
        )
        season_raw = raw["season"]
        season = Season(
            opening_party=_as_date(season_raw["opening_party"]),
            closing_party=_as_date(season_raw["closing_party"]),
            off_season_message=text_in(season_raw["off_season_message"], DEFAULT_LANGUAGE),
            box_office_hours=text_in(season_raw["box_office_hours"], DEFAULT_LANGUAGE),
        )
        closed_on = tuple(day.lower() for day in raw["opening_hours"].get("closed_on", ()))
        return cls(
            facts=raw,
            season=season,
            weekly_nights=nights,
            special_events=events,
            closed_on=closed_on,
        )

    @property
    def name(self) -> str:
        return self.facts["brand"]["name"]

    def event_on(self, day: dt.date) -> SpecialEvent | None:
        return next((event for event in self.special_events if event.date == day), None)

    def find_night(self, name: str) -> WeeklyNight | None:
        wanted = _simplify(name)
        return next(
            (night for night in self.weekly_nights.values() if _simplify(night.name) == wanted),
            None,
        )

    def find_event(self, name: str) -> SpecialEvent | None:
        """An event by (part of) its name: 'closing party', 'anniversary', 'full moon'."""
        wanted = _simplify(name)
        if not wanted:
            return None
        for event in self.special_events:
            simple = _simplify(event.name)
            if wanted in simple or simple.startswith(wanted):
                return event
        return None

    def closing_time(self, weekday: str) -> str:
        closing = self.facts["opening_hours"]["closing"]
        if weekday in ("friday", "saturday"):
            return closing["friday_and_saturday"]
        return closing["sunday_to_thursday"]

    def template_facts(self, language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
        """Flat facts that the answer templates (data/answers.yml) fill in, e.g. ``{dress_code}``,
        in ``language``: each fact's form in that language, its English one when it has none.
        Dates and weekday names are written in ``language`` (``opening_party`` is "viernes 28 de
        mayo de 2027" in Spanish); ``opening_party_es``, ``closed_on_de``, ... are the forms of
        one language whatever ``language`` is, for templates that name them."""
        f = self.facts

        def say(value: Any) -> str:
            return text_in(value, language)

        brand, hours, tickets = f["brand"], f["opening_hours"], f["tickets"]
        entry, on_site, travel = f["entry_policy"], f["on_site"], f["getting_there"]
        lost, press, vip = f["lost_and_found"], f["press_and_artists"], tickets["vip_tables"]
        nights = "; ".join(
            f"{weekday_name(day, language)}: {night.name} ({night.genre.in_(language)})"
            for day, night in self.weekly_nights.items()
        )
        residents = "; ".join(
            f"{night.name}: {', '.join(night.residents)}"
            for night in self.weekly_nights.values()
            if night.residents
        )
        regular_online = sorted({night.ticket_online for night in self.weekly_nights.values()})
        regular_door = sorted({night.ticket_door for night in self.weekly_nights.values()})
        at_the_door = _AT_THE_DOOR.get(language, _AT_THE_DOOR[DEFAULT_LANGUAGE])
        facts = {
            "venue_name": brand["name"],
            "season_year": str(f["season"].get("year", self.season.opening_party.year)),
            "website": brand["website"],
            "tickets_url": brand["tickets_url"],
            "email": brand["email"],
            "phone": brand["phone"],
            "address": say(brand["address"]),
            "lost_property_email": brand["lost_property_email"],
            "access_email": brand["access_email"],
            "press_email": brand["press_email"],
            "careers_url": brand["careers_url"],
            "doors": hours["doors"],
            "main_room_opens": hours["main_room_opens"],
            "terrace_opens": hours["terrace_opens"],
            "closing_weeknights": hours["closing"]["sunday_to_thursday"],
            "closing_weekend": hours["closing"]["friday_and_saturday"],
            "last_entry": hours["last_entry"],
            "closed_on": self._closed_on(language),
            "opening_party": long_date(self.season.opening_party, language),
            "closing_party": long_date(self.season.closing_party, language),
            "off_season_message": say(f["season"]["off_season_message"]),
            "price_list_online": f"{regular_online[0]}–{regular_online[-1]} €",
            "price_range_door": f"{regular_door[0]}–{regular_door[-1]} €",
            "special_events": "; ".join(
                f"{event.name} ({long_date(event.date, language)})"
                for event in self.special_events
            ),
            "special_event_prices": "; ".join(
                f"{event.name} {event.ticket_online} € online / {event.ticket_door} € "
                f"{at_the_door}"
                for event in self.special_events
            ),
            "box_office_hours": say(f["season"]["box_office_hours"]),
            "weekly_nights": nights,
            "residents": residents,
            "where_to_buy": say(tickets["where_to_buy"]),
            "early_bird": say(tickets["early_bird"]),
            "e_tickets": say(tickets["e_tickets"]),
            "lost_e_ticket": say(tickets["lost_e_ticket"]),
            "name_change": say(tickets["name_change"]),
            "refunds": say(tickets["refunds"]),
            "group_discount": say(tickets["group_discount"]),
            "vip_from_price": str(vip["from_price"]),
            "vip_includes": say(vip["includes"]),
            "vip_booking": say(vip["booking"]),
            "minimum_age": str(entry["minimum_age"]),
            "id_required": say(entry["id_required"]),
            "dress_code": say(entry["dress_code"]),
            "re_entry": say(entry["re_entry"]),
            "guest_list": say(entry["guest_list"]),
            "bag_policy": say(entry["bag_policy"]),
            "cloakroom": say(on_site["cloakroom"]),
            "lockers": say(on_site["lockers"]),
            "payments": say(on_site["payments"]),
            "water": say(on_site["water"]),
            "smoking": say(on_site["smoking"]),
            "photography": say(on_site["photography"]),
            "first_aid": say(on_site["first_aid"]),
            "welfare_team": say(on_site["welfare_team"]),
            "accessibility": say(on_site["accessibility"]),
            "disco_bus": say(travel["disco_bus"]),
            "taxi": say(travel["taxi"]),
            "parking": say(travel["parking"]),
            "from_airport": say(travel["from_airport"]),
            "lost_keep_days": str(lost["keep_items_for_days"]),
            "lost_how_to_report": say(lost["how_to_report"]),
            "lost_pickup": say(lost["pickup"]),
            "lost_phones_wallets": say(lost["phones_and_wallets"]),
            "press": say(press["press"]),
            "artist_bookings": say(press["artist_bookings"]),
            "jobs": say(f["jobs"]["how_to_apply"]),
        }
        for code in _DAY_NAMES.keys() - {DEFAULT_LANGUAGE}:  # opening_party_es, closed_on_de, ...
            facts[f"opening_party_{code}"] = long_date(self.season.opening_party, code)
            facts[f"closing_party_{code}"] = long_date(self.season.closing_party, code)
            facts[f"closed_on_{code}"] = self._closed_on(code)
        return facts

    def _closed_on(self, language: str) -> str:
        return ", ".join(weekday_name(day, language) for day in self.closed_on)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _simplify(text: str) -> str:
    cleaned = "".join(ch for ch in text.lower().replace("&", "and") if ch.isalnum() or ch == " ")
    words = [word for word in cleaned.split() if word not in {"the", "party", "night", "aurora"}]
    return " ".join(words)


# Weekday and month names by language, for dates and weekday names in answers; any other language
# gets the English ones.
_DAY_NAMES = {
    "en": tuple(day.capitalize() for day in WEEKDAYS),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
}
_MONTH_NAMES = {
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"),
}
# How a door price is marked in the special events' price list ("90 € door").
_AT_THE_DOOR = {"en": "door", "es": "en taquilla", "de": "an der Abendkasse"}


def weekday_name(weekday: str, language: str = DEFAULT_LANGUAGE) -> str:
    """'Tuesday', 'martes', 'Dienstag': a weekday ('tuesday') as written in ``language``."""
    names = _DAY_NAMES.get(language, _DAY_NAMES[DEFAULT_LANGUAGE])
    return names[WEEKDAYS.index(weekday)]


def long_date(day: dt.date, language: str = DEFAULT_LANGUAGE) -> str:
    """'Friday 28 May 2027', 'viernes 28 de mayo de 2027', 'Freitag, 28. Mai 2027': the one date
    format fans see, in ``language`` (English for a language without one)."""
    weekday = WEEKDAYS[day.weekday()]
    if language == "es":
        month = _MONTH_NAMES["es"][day.month - 1]
        return f"{weekday_name(weekday, 'es')} {day.day} de {month} de {day.year}"
    if language == "de":
        month = _MONTH_NAMES["de"][day.month - 1]
        return f"{weekday_name(weekday, 'de')}, {day.day}. {month} {day.year}"
    return f"{weekday.capitalize()} {day.day} {day.strftime('%B')} {day.year}"
