"""The venue's fact sheet (data/venue.yml), loaded into typed objects.

Everything the bot says about the venue comes from here: change a fact in the YAML and the answer
changes. Loading is explicit (``Venue.load``), never at import time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class WeeklyNight:
    weekday: str
    name: str
    genre: str
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
        residents = raw.get("resident_djs", {})
        nights = {
            weekday: WeeklyNight(
                weekday=weekday,
                name=night["name"],
                genre=night["genre"],
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
            off_season_message=" ".join(str(season_raw["off_season_message"]).split()),
            box_office_hours=season_raw["box_office_hours"],
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

    def template_facts(self) -> dict[str, str]:
        """Flat facts that response templates in domain.yml fill in, e.g. ``{dress_code}``."""
        f = self.facts
        brand, hours, tickets = f["brand"], f["opening_hours"], f["tickets"]
        entry, on_site, travel = f["entry_policy"], f["on_site"], f["getting_there"]
        lost, press, vip = f["lost_and_found"], f["press_and_artists"], tickets["vip_tables"]
        nights = "; ".join(
            f"{day.capitalize()}: {night.name} ({night.genre})"
            for day, night in self.weekly_nights.items()
        )
        residents = "; ".join(
            f"{night.name}: {', '.join(night.residents)}"
            for night in self.weekly_nights.values()
            if night.residents
        )
        regular_online = sorted({night.ticket_online for night in self.weekly_nights.values()})
        regular_door = sorted({night.ticket_door for night in self.weekly_nights.values()})
        return {
            "venue_name": brand["name"],
            "season_year": str(f["season"].get("year", self.season.opening_party.year)),
            "website": brand["website"],
            "tickets_url": brand["tickets_url"],
            "email": brand["email"],
            "phone": brand["phone"],
            "address": brand["address"],
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
            "closed_on": ", ".join(day.capitalize() for day in self.closed_on),
            "opening_party": long_date(self.season.opening_party),
            "closing_party": long_date(self.season.closing_party),
            "opening_party_es": long_date(self.season.opening_party, "es"),
            "closing_party_es": long_date(self.season.closing_party, "es"),
            "closed_on_es": ", ".join(_ES_DAYS[WEEKDAYS.index(day)] for day in self.closed_on),
            "off_season_message": self.season.off_season_message,
            "price_list_online": f"{regular_online[0]}–{regular_online[-1]} €",
            "price_range_door": f"{regular_door[0]}–{regular_door[-1]} €",
            "special_events": "; ".join(
                f"{event.name} ({long_date(event.date)})" for event in self.special_events
            ),
            "special_event_prices": "; ".join(
                f"{event.name} {event.ticket_online} € online / {event.ticket_door} € door"
                for event in self.special_events
            ),
            "box_office_hours": self.season.box_office_hours,
            "weekly_nights": nights,
            "residents": residents,
            "where_to_buy": tickets["where_to_buy"],
            "early_bird": tickets["early_bird"],
            "e_tickets": tickets["e_tickets"],
            "lost_e_ticket": tickets["lost_e_ticket"],
            "name_change": tickets["name_change"],
            "refunds": " ".join(str(tickets["refunds"]).split()),
            "group_discount": tickets["group_discount"],
            "vip_from_price": str(vip["from_price"]),
            "vip_includes": vip["includes"],
            "vip_booking": vip["booking"],
            "minimum_age": str(entry["minimum_age"]),
            "id_required": " ".join(str(entry["id_required"]).split()),
            "dress_code": " ".join(str(entry["dress_code"]).split()),
            "re_entry": entry["re_entry"],
            "guest_list": entry["guest_list"],
            "bag_policy": entry["bag_policy"],
            "cloakroom": on_site["cloakroom"],
            "lockers": on_site["lockers"],
            "payments": on_site["payments"],
            "water": on_site["water"],
            "smoking": on_site["smoking"],
            "photography": on_site["photography"],
            "first_aid": on_site["first_aid"],
            "welfare_team": on_site["welfare_team"],
            "accessibility": " ".join(str(on_site["accessibility"]).split()),
            "disco_bus": travel["disco_bus"],
            "taxi": travel["taxi"],
            "parking": travel["parking"],
            "from_airport": travel["from_airport"],
            "lost_keep_days": str(lost["keep_items_for_days"]),
            "lost_how_to_report": lost["how_to_report"],
            "lost_pickup": lost["pickup"],
            "lost_phones_wallets": lost["phones_and_wallets"],
            "press": press["press"],
            "artist_bookings": press["artist_bookings"],
            "jobs": f["jobs"]["how_to_apply"],
        }


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _simplify(text: str) -> str:
    cleaned = "".join(ch for ch in text.lower().replace("&", "and") if ch.isalnum() or ch == " ")
    words = [word for word in cleaned.split() if word not in {"the", "party", "night", "aurora"}]
    return " ".join(words)


_ES_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_ES_MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
              "septiembre", "octubre", "noviembre", "diciembre")


def long_date(day: dt.date, language: str = "en") -> str:
    """'Friday 28 May 2027' (or 'viernes 28 de mayo de 2027'): the one date format fans see."""
    if language == "es":
        return f"{_ES_DAYS[day.weekday()]} {day.day} de {_ES_MONTHS[day.month - 1]} de {day.year}"
    return f"{WEEKDAYS[day.weekday()].capitalize()} {day.day} {day.strftime('%B')} {day.year}"
