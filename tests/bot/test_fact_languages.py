"""Facts in the fan's language: data/venue.yml gives a fact a form per language (``{en: ...,
es: ..., de: ...}``), ``Venue.template_facts(language)`` picks it (English when a fact has none),
and a Spanish or German answer is filled with Spanish or German facts, dates and weekday names.

The main check: no English fact sentence is left in a Spanish answer (nor in a German one) once
its placeholders are filled, for every text of data/answers.yml in that language and for the
replies the reply builders give to fans' questions.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from actions import actions as bot_actions
from actions import replies
from actions.answers import NOT_IN_YOUR_LANGUAGE, Answers
from actions.venue import WEEKDAYS, Text, Venue, long_date, weekday_name

from .conftest import IN_SEASON_NOW, OFF_SEASON_NOW, ROOT, make_desk, make_tracker

VENUE_FILE = ROOT / "data" / "venue.yml"
RAW = yaml.safe_load(VENUE_FILE.read_text(encoding="utf-8"))
VENUE = Venue.from_mapping(RAW)
ANSWERS = Answers.load(ROOT / "data" / "answers.yml")
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
# The facts in English, without the fixed-language forms (opening_party_es, closed_on_de, ...).
ENGLISH = {name: value for name, value in VENUE.template_facts("en").items()
           if not name.endswith(("_es", "_de"))}

# Facts said the same in every language: names, links, emails, the phone, times, numbers.
SAID_THE_SAME = {
    "venue_name", "season_year", "website", "tickets_url", "email", "phone",
    "lost_property_email", "access_email", "press_email", "careers_url", "doors",
    "main_room_opens", "terrace_opens", "closing_weeknights", "closing_weekend", "last_entry",
    "price_list_online", "price_range_door", "residents", "vip_from_price", "minimum_age",
    "lost_keep_days",
}
# The fact sheet's proper names, which stay English in every language ("Sunday Social", "Full
# Moon Terrace") and are taken out of a text before looking for English words in it.
PROPER_NAMES = sorted(
    {night.name for night in VENUE.weekly_nights.values()}
    | {event.name for event in VENUE.special_events}
    | {dj for night in VENUE.weekly_nights.values() for dj in night.residents}
    | {dj for event in VENUE.special_events for dj in event.line_up},
    key=len, reverse=True,
)
ENGLISH_DAYS = tuple(day.capitalize() for day in WEEKDAYS)
ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")
GERMAN_MONTHS_TOO = {"April", "August", "September", "November"}  # the same word in German


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def keys_in(language: str) -> list[str]:
    return [key for key in ANSWERS.templates if ANSWERS.has_text(key, language)]


def facts_used_in(language: str) -> set[str]:
    names = set().union(*(fields(t) for key in keys_in(language)
                          for t in ANSWERS.variants(key, language)))
    return names & set(ENGLISH)


# --- the English left in a text ----------------------------------------------------------------


def _clauses(text: str) -> Iterator[str]:
    """The sentences and ';'-separated parts of an English fact, without their end punctuation."""
    for part in re.split(r"(?<=[.;])\s+", text):
        part = part.strip().rstrip(".;")
        if part:
            yield part


def english_fact_sentences() -> set[str]:
    """Every English fact sentence (or part of one) of three words or more, and the English
    forms of the words facts bring along (a night's genre): none may be in another language's
    answer. Facts said the same in every language are not English sentences."""
    sentences = {
        clause
        for name, value in ENGLISH.items() if name not in SAID_THE_SAME
        for clause in _clauses(value)
    }
    sentences |= {str(night.genre) for night in VENUE.weekly_nights.values()}
    return {sentence for sentence in sentences if len(sentence.split()) >= 3}


ENGLISH_SENTENCES = english_fact_sentences()


def english_left(text: str, language: str) -> list[str]:
    """What is English in ``text`` (an answer in ``language``): whole English fact sentences,
    and English weekday or month names outside the venue's proper names."""
    found = [sentence for sentence in ENGLISH_SENTENCES if sentence in text]
    for name in PROPER_NAMES:
        text = text.replace(name, " ")
    months = [m for m in ENGLISH_MONTHS if language != "de" or m not in GERMAN_MONTHS_TOO]
    found += re.findall(rf"\b(?:{'|'.join(ENGLISH_DAYS + tuple(months))})\b", text)
    return found


def test_the_check_finds_english() -> None:
    """The check itself: the English answers are full of English facts, and an English date."""
    english = " ".join(replies.fact_answer(make_desk(IN_SEASON_NOW).context("en"), key)[0]
                       for key in ("dress_code", "getting_there", "ticket_prices_overview"))
    assert len(english_left(english, "es")) >= 5
    assert english_left("El Friday 4 June", "es") == ["Friday", "June"]
    assert english_left("Sunday Social el domingo", "es") == []  # a night's name is no English


# --- every text of a language, filled with the facts --------------------------------------------


def sample_values(ctx: replies.Context) -> Iterator[dict[str, Any]]:
    """Values as the reply builders pass them next to the facts: each weekly night (with its
    weekday names and genre), each special event, a closed day, a lost-property report."""
    tuesday = dt.date(2027, 8, 3)
    common = {
        "day": tuesday, "weekday": "Tuesday", "first": dt.date(2026, 11, 27),
        "last": dt.date(2026, 11, 29), "next_day": dt.date(2027, 8, 4), "next_name": "Foam & Fire",
        "item": "iPhone", "when": "27/11", "description": "verde", "contact": "fan@example.com",
        "weekday_cap": "Tuesday", "weekday_es": weekday_name("tuesday", "es"),
        "weekday_de": weekday_name("tuesday", "de"),
    }
    for weekday, night in ctx.venue.weekly_nights.items():
        day = dt.date(2027, 7, 5) + dt.timedelta(days=WEEKDAYS.index(weekday))  # a Monday on
        event = ctx.venue.special_events[len(weekday) % len(ctx.venue.special_events)]
        yield {
            **common, "day": day, "weekday": weekday, "weekday_cap": weekday.capitalize(),
            "weekday_es": weekday_name(weekday, "es"), "weekday_de": weekday_name(weekday, "de"),
            "night_name": night.name, "genre": night.genre,
            "residents": " & ".join(night.residents), "ticket_online": night.ticket_online,
            "ticket_door": night.ticket_door, "closing": ctx.venue.closing_time(weekday),
            "event_name": event.name, "line_up": ", ".join(event.line_up),
            "next_open": ctx.say("next_open", next_day=day, next_name=night.name),
        }


@pytest.mark.parametrize("language", ["es", "de"])
@pytest.mark.parametrize("now", [IN_SEASON_NOW, OFF_SEASON_NOW], ids=["in_season", "off_season"])
def test_no_english_fact_sentence_in_any_text_of_the_language(language: str, now) -> None:
    ctx = make_desk(now).context(language)
    checked = 0
    for values in sample_values(ctx):
        filled = ctx.values(language, values)
        for key in keys_in(language):
            for template in ANSWERS.variants(key, language):
                text = template.format_map(filled)
                assert not english_left(text, language), f"{key}/{language}: {text}"
                checked += 1
    assert checked > 100


# --- the replies fans get -----------------------------------------------------------------------

QUESTIONS = [
    "are you open tonight?", "what's on tomorrow", "how much is Friday?", "what about tuesday?",
    "what's on 3 August 2027", "who is playing on 17 July 2027", "what's on this weekend",
    "next saturday", "whats on", "how much are tickets", "que hay el sabado", "abris hoy",
    "y el martes?", "q hay este finde", "cuanto es el domingo", "was läuft am Samstag",
    "habt ihr heute offen", "und morgen?", "am Wochenende", "was kostet es am 15. August",
    "nächsten Dienstag", "Silvester",
]
NAMED = ["closing party", "full moon", "nocturne", "sunday social", "foam and fire"]


def fan_replies(language: str, now: dt.datetime) -> Iterator[tuple[str, str]]:
    """(what was asked, a reply) for the questions, the named nights and events and every plain
    fact answer — without the replies that came in English because the language has no text for
    them yet (they start with the "not in your language" line)."""
    desk = make_desk(now)

    def told(label: str, texts: list[str], ctx: replies.Context) -> Iterator[tuple[str, str]]:
        notice = ctx.answers.render(NOT_IN_YOUR_LANGUAGE, language, ctx.facts())
        for text in ctx.with_language_notice(texts):
            if not text.startswith(notice):
                yield label, text

    builders = (replies.whats_on, replies.ticket_prices, replies.are_you_open,
                replies.opening_hours)
    for builder in builders:
        for question in QUESTIONS:
            ctx = desk.context(language)
            yield from told(f"{builder.__name__}({question!r})", builder(ctx, question), ctx)
    for name in NAMED:
        for builder in (replies.whats_on, replies.ticket_prices):
            ctx = desk.context(language)
            yield from told(f"{builder.__name__}[{name}]", builder(ctx, "", [name]), ctx)
    def english_fields(key: str) -> set[str]:
        return set().union(*(fields(t) for t in ANSWERS.templates[key].get("en") or ()))

    for key in ANSWERS.templates:
        if english_fields(key) <= set(ENGLISH):  # a plain fact answer: no values of its own
            ctx = desk.context(language)
            yield from told(key, replies.fact_answer(ctx, key), ctx)
    report = {"item": "iPhone", "when": "sábado", "description": "negro", "contact": "a@b.example"}
    yield "lost property report", replies.lost_property_summary(desk.context(language), report)


@pytest.mark.parametrize("language", ["es", "de"])
@pytest.mark.parametrize("now", [IN_SEASON_NOW, OFF_SEASON_NOW], ids=["in_season", "off_season"])
def test_no_english_fact_sentence_in_the_replies(language: str, now) -> None:
    checked = 0
    for asked, text in fan_replies(language, now):
        assert "{" not in text, f"{asked}: {text}"
        assert not english_left(text, language), f"{asked} ({language}): {text}"
        checked += 1
    assert checked > 50


# --- the forms by language in the fact sheet ----------------------------------------------------


@pytest.mark.parametrize("language", ["es", "de"])
def test_every_fact_an_answer_uses_has_a_form_in_its_language(language: str) -> None:
    """A fact a Spanish (German) answer uses is written in Spanish (German), unless it is one
    said the same in every language (a link, a time, a name)."""
    facts = VENUE.template_facts(language)
    english_only = sorted(name for name in facts_used_in(language) - SAID_THE_SAME
                          if facts[name] == ENGLISH[name])
    assert not english_only, f"no {language} form for {english_only}"


def language_forms(node: Any, where: str = "") -> Iterator[tuple[str, Mapping[str, str]]]:
    if isinstance(node, Mapping):
        if node and all(isinstance(k, str) and len(k) == 2 for k in node) and "en" in node:
            yield where, node
            return
        for key, value in node.items():
            yield from language_forms(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from language_forms(value, f"{where}[{index}]")


def _hard_facts(text: str) -> list[str]:
    """The numbers, emails and links of a text: what a translation must not change."""
    links = re.findall(r"https?://[^\s;,)]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text)
    for link in links:
        text = text.replace(link, " ")
    return sorted(links + re.findall(r"\d+", text))


def test_the_fact_sheet_has_forms_by_language() -> None:
    found = dict(language_forms(RAW))
    assert len(found) >= 35
    assert {"es", "de"} <= set(found["getting_there.taxi"])


@pytest.mark.parametrize(("where", "forms"), list(language_forms(RAW)),
                         ids=[where for where, _ in language_forms(RAW)])
def test_every_form_keeps_the_english_numbers_emails_and_links(where: str,
                                                              forms: Mapping[str, str]) -> None:
    english = _hard_facts(str(forms["en"]))
    for language, form in forms.items():
        assert _hard_facts(str(form)) == english, f"{where}.{language}: {form!r}"


def test_the_language_picks_the_form_and_english_is_the_fallback() -> None:
    en, es, de = (VENUE.template_facts(code) for code in ("en", "es", "de"))
    assert VENUE.template_facts() == en
    assert en.keys() == es.keys() == de.keys()
    assert en["taxi"] == "taxi rank at the main entrance all night"
    assert es["taxi"] == "parada de taxis en la entrada principal toda la noche"
    assert de["taxi"] == "Taxistand am Haupteingang, die ganze Nacht"
    assert de["water"] == en["water"]  # no German form: English, fact by fact
    assert VENUE.template_facts("fr")["taxi"] == en["taxi"]  # a language without forms
    assert es["refunds"].startswith("Las entradas no se reembolsan.") and "\n" not in es["refunds"]


def test_dates_and_weekday_names_are_written_in_the_language() -> None:
    en, es, de = (VENUE.template_facts(code) for code in ("en", "es", "de"))
    assert (en["opening_party"], es["opening_party"], de["opening_party"]) == (
        "Friday 28 May 2027", "viernes 28 de mayo de 2027", "Freitag, 28. Mai 2027")
    assert (en["closed_on"], es["closed_on"], de["closed_on"]) == ("Tuesday", "martes", "Dienstag")
    for facts in (en, es, de):  # the fixed-language forms, whatever the language
        assert facts["opening_party_es"] == "viernes 28 de mayo de 2027"
        assert facts["closing_party_de"] == "Samstag, 9. Oktober 2027"
        assert facts["closed_on_de"] == "Dienstag"
    assert de["weekly_nights"].startswith("Montag: Tidal (Techno); Mittwoch: Foam & Fire "
                                          "(Schaumparty / Tech House)")
    assert "Full Moon Terrace (domingo 15 de agosto de 2027)" in es["special_events"]
    assert "Closing Party 2027 75 € online / 90 € an der Abendkasse" in de["special_event_prices"]
    assert long_date(dt.date(2027, 3, 1), "de") == "Montag, 1. März 2027"
    assert long_date(dt.date(2027, 3, 1), "fr") == "Monday 1 March 2027"


def test_a_genre_is_text_with_forms() -> None:
    genre = VENUE.weekly_nights["sunday"].genre
    assert isinstance(genre, Text) and genre == "disco and house"  # the English form as a str
    assert (genre.in_("es"), genre.in_("de"), genre.in_("fr")) == (
        "disco y house", "Disco und House", "disco and house")


def test_a_fact_with_forms_needs_an_english_one() -> None:
    raw = copy.deepcopy(RAW)
    raw["on_site"]["lockers"] = {"es": "10 euros", "de": "10 Euro"}
    with pytest.raises(ValueError, match="on_site.lockers"):
        Venue.from_mapping(raw)


def test_a_fact_written_as_one_text_is_said_so_in_every_language(tmp_path) -> None:
    """Replacing a fact's forms by one text (as a quick edit would) changes it everywhere."""
    raw = copy.deepcopy(RAW)
    raw["on_site"]["lockers"] = "12 euros any size"
    venue_file = tmp_path / "venue.yml"
    venue_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    for language in ("en", "es", "de"):
        desk = make_desk(OFF_SEASON_NOW, venue_file)
        assert "12 euros any size" in replies.fact_answer(desk.context(language),
                                                          "cloakroom_lockers")[0]


# --- a few replies, word for word ---------------------------------------------------------------


def test_spanish_closed_days_name_the_weekday() -> None:
    ctx = make_desk(IN_SEASON_NOW).context("es")
    [closed] = replies.are_you_open(ctx, "abris el 3 de agosto de 2027?")
    assert closed.startswith("El martes 3 de agosto de 2027 cerramos: no abrimos ningún martes.")
    [never] = replies.whats_on(ctx, "y el martes?")
    assert never.startswith("No abrimos ningún martes en toda la temporada.")
    assert "miércoles: Foam & Fire (fiesta de espuma / tech house)" in never


def test_german_dates_and_weekdays() -> None:
    [closed] = replies.are_you_open(make_desk(OFF_SEASON_NOW).context("de"), "habt ihr heute offen")
    assert closed == (
        "Am Donnerstag, 26. November 2026 haben wir geschlossen – das ist außerhalb der Saison. "
        "Die Saison 2027 startet mit der Opening Party am Freitag, 28. Mai 2027 und endet mit der "
        "Closing Party am Samstag, 9. Oktober 2027.")
    ctx = make_desk(IN_SEASON_NOW).context("de")
    [tuesday] = replies.are_you_open(ctx, "habt ihr am 3. August 2027 offen?")
    assert tuesday == ("Am Dienstag, 3. August 2027 haben wir geschlossen – Dienstag ist bei uns "
                       "immer Ruhetag. Die nächste Partynacht ist am Mittwoch, 4. August 2027: "
                       "Foam & Fire.")
    [saturday] = replies.whats_on(ctx, "was läuft samstags?")
    assert saturday.startswith("Samstags läuft Nocturne – Techno, mit den Residents")
    [hours] = replies.opening_hours(ctx, "wann habt ihr offen")
    assert hours.endswith("Ruhetag: Dienstag.")


async def test_a_spanish_fan_gets_spanish_facts_through_the_action(off_season_desk) -> None:
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    tracker = make_tracker("como llego", "getting_there", metadata={"language": "es"})
    await bot_actions.ActionAnswer(off_season_desk).run(dispatcher, tracker, DOMAIN)
    [message] = dispatcher.messages
    assert message["text"].startswith("Cómo llegar: Discobus línea 3 desde Ibiza ciudad")
    assert "Aparcamiento: gratuito, con 400 plazas." in message["text"]
    assert message["text"].endswith("Ibiza, España.")


def test_an_answer_in_english_keeps_its_facts_in_english() -> None:
    """A German fan asking something without a German text gets it in English — facts too."""
    ctx = make_desk(IN_SEASON_NOW).context("de")
    assert ctx.say("water") == "Yes — free tap water at every bar. Stay hydrated 💧"
    [overview] = replies.whats_on(ctx, "was ist los")
    assert "Monday: Tidal (techno)" in overview and "(Friday 28 May 2027)" in overview
