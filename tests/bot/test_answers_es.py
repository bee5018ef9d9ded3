"""Spanish and German answers, filled with the facts of data/venue.yml (no network, frozen clock).

Every answer key has a Spanish text; the commonest questions also have a German one. Dates in a
Spanish answer are written in Spanish; German dates are only checked for their numbers, since how
they are written is the code's business (actions/venue.py `long_date`).
"""

from __future__ import annotations

import re
import string

import pytest
import yaml

from actions import actions as bot_actions
from actions import replies
from actions.answers import Answers
from actions.venue import Venue

from .conftest import IN_SEASON_NOW, OFF_SEASON_NOW, ROOT, make_desk, make_tracker, user_event

ANSWERS = Answers.load(ROOT / "data" / "answers.yml")
VENUE = Venue.load(ROOT / "data" / "venue.yml")
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())

# The values the reply builders pass next to the fact sheet (actions/replies.py).
PER_ANSWER_VALUES = {
    "day", "weekday", "weekday_cap", "weekday_es", "weekday_de", "night_name", "genre", "residents",
    "ticket_online", "ticket_door", "closing", "event_name", "line_up", "next_open",
    "next_day", "next_name", "first", "last", "item", "when", "description", "contact",
}

# The German-covered questions: hours and "are you open", prices, where to buy, getting here,
# age and ID, dress code, lost property (and the report form), a person, greetings — with every
# key those answers are built from.
GERMAN_KEYS = {
    "greet", "goodbye", "thanks", "affirm", "deny", "request_human",
    "opening_hours", "are_you_open_off_season", "are_you_open_closed_day", "are_you_open_yes",
    "next_open", "night_event", "night_weekly", "night_closed_day", "night_off_season",
    "weekday_night", "weekday_closed", "season_note",
    "ticket_prices_date_event", "ticket_prices_date_weekly", "ticket_prices_weekday",
    "ticket_prices_overview", "where_to_buy", "getting_there", "age_id", "dress_code",
    "lost_property_info", "ask_lost_item", "ask_lost_when", "ask_lost_description",
    "ask_lost_contact", "invalid_lost_contact", "lost_property_received",
    "fallback_first", "fallback_offer_human", "button_yes_person", "button_no_thanks",
    "not_in_your_language",
}

# English words that must not be left in a Spanish or German sentence (facts from the fact sheet
# are placeholders and are not checked here).
ENGLISH_WORDS = re.compile(r"\b(the|and|you|your|we|our|is|are|at|for|to|of|on|with)\b",
                           re.IGNORECASE)


def ctx(now, language: str) -> replies.Context:
    return make_desk(now).context(language)


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def texts(key: str, language: str) -> list[str]:
    return list(ANSWERS.templates[key].get(language) or ())


# --- the texts themselves ----------------------------------------------------------------------


def test_every_answer_key_has_spanish() -> None:
    missing = [key for key in ANSWERS.templates if not texts(key, "es")]
    assert not missing, f"no Spanish text for {missing}"


def test_the_german_questions_have_german() -> None:
    missing = sorted(key for key in GERMAN_KEYS if not texts(key, "de"))
    assert not missing, f"no German text for {missing}"


def test_every_key_the_actions_say_exists() -> None:
    """The keys the actions name outright (besides intents) are all in data/answers.yml."""
    code = "\n".join(path.read_text() for path in (ROOT / "actions").glob("*.py"))
    named = set(re.findall(r"""say\(\s*f?["']([a-z_]+)["']""", code))
    named |= {f"ask_{slot}" for slot in bot_actions.LOST_PROPERTY_SLOTS}
    named |= {"weekday_night", "ticket_prices_weekday", "weekday_closed"}
    assert named <= set(ANSWERS.templates), named - set(ANSWERS.templates)


@pytest.mark.parametrize("language", ["es", "de"])
def test_every_placeholder_is_provided(language: str) -> None:
    provided = set(VENUE.template_facts()) | PER_ANSWER_VALUES
    for key in ANSWERS.templates:
        for template in texts(key, language):
            assert fields(template) <= provided, f"{key}/{language}: {fields(template) - provided}"


@pytest.mark.parametrize("language", ["es", "de"])
def test_translations_name_the_facts_english_names(language: str) -> None:
    """A translation drops no fact: every placeholder of the English text is there too (or its
    Spanish form, or a sentence that says it without the English-only wording)."""
    spanish_forms = {"opening_party": "opening_party_es", "closing_party": "closing_party_es",
                     "closed_on": "closed_on_es", "weekday_cap": "weekday_es"}
    # Written out from their parts in the translations: the off-season message (season year and
    # both party dates) and the weekday of a night we never open ("ese día de la semana").
    reworded = {"off_season_message", "weekday", "weekday_cap"}
    for key in ANSWERS.templates:
        english = set().union(*(fields(t) for t in texts(key, "en")))
        for template in texts(key, language):
            names = fields(template)
            for name in english - reworded:
                alternatives = {name, spanish_forms.get(name, name)}
                assert names & alternatives, f"{key}/{language} drops {{{name}}}"


@pytest.mark.parametrize("language", ["es", "de"])
def test_no_english_left_around_the_facts(language: str) -> None:
    for key in ANSWERS.templates:
        for template in texts(key, language):
            words = re.sub(r"\{[a-z_]+\}", " ", template)
            assert not ENGLISH_WORDS.search(words), f"{key}/{language}: {template}"


# --- Spanish answers with the facts filled in -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "facts"),
    [("getting_there", ["Discobus línea 3", "Camí de sa Vorera 12"]),
     ("parking", ["400 plazas"]),
     ("address", ["Sant Rafel de sa Creu", "15 minutos"]),
     ("age_id", ["18 años", "pasaporte"]),
     ("dress_code", ["Smart casual"]),
     ("where_to_buy", ["https://aurora-ibiza.example/tickets", "18:00-20:00"]),
     ("early_bird", ["35 euros", "https://aurora-ibiza.example/tickets"]),
     ("lost_eticket", ["My tickets"]),
     ("name_change", ["48 horas"]), ("refunds", ["14 días"]), ("group_discount", ["10%"]),
     ("cloakroom_lockers", ["5 euros", "15 euros la grande"]), ("payments", ["cajero"]),
     ("water", ["del grifo"]), ("smoking", ["terraza exterior para fumadores"]),
     ("photography", ["acreditación de prensa"]), ("first_aid_welfare", ["chaleco morado"]),
     ("accessibility", ["72 horas"]), ("bag_policy", ["A4", "5 euros"]),
     ("re_entry", ["no está permitida"]), ("guest_list", ["18:00"]),
     ("lost_property_info", ["30 días", "lost@aurora-ibiza.example", "Guardia Civil"]),
     ("artist_booking", ["press@aurora-ibiza.example"]), ("jobs", ["/careers"]),
     ("contact", ["info@aurora-ibiza.example", "+34 971 000 417", "https://aurora-ibiza.example"]),
     ("season_dates", ["viernes 28 de mayo de 2027", "sábado 9 de octubre de 2027", "martes"]),
     ("last_entry", ["03:30", "23:30"]),
     ("bot_challenge", ["Aurora Ibiza", "persona"]),
     ("greet", ["Aurora Ibiza"])],
)
def test_spanish_fact_answers_carry_the_fact(key: str, facts: list[str]) -> None:
    text = " ".join(replies.fact_answer(ctx(IN_SEASON_NOW, "es"), key))
    for fact in facts:
        assert fact in text, f"{key}: {fact!r} not in {text!r}"
    assert "{" not in text


def test_spanish_opening_hours_off_season_end_with_the_reopening() -> None:
    texts_ = replies.opening_hours(ctx(OFF_SEASON_NOW, "es"), "a q hora abris?")
    assert "23:30" in texts_[0] and "07:00" in texts_[0] and "Los martes cerramos" in texts_[0]
    assert texts_[-1].startswith("Ojo") and "viernes 28 de mayo de 2027" in texts_[-1]


def test_spanish_tonight_off_season() -> None:
    [text] = replies.are_you_open(ctx(OFF_SEASON_NOW, "es"), "abris esta noche?")
    assert text.startswith("El jueves 26 de noviembre de 2026 cerramos")
    assert "viernes 28 de mayo de 2027" in text and "sábado 9 de octubre de 2027" in text


def test_spanish_tonight_in_season_at_2am_is_the_running_night() -> None:
    [text] = replies.are_you_open(ctx(IN_SEASON_NOW, "es"), "abris hoy?")
    assert text.startswith("El miércoles 14 de julio de 2027 toca Foam & Fire")
    assert "03:30" in text and "06:30" in text and "50 €" in text and "65 €" in text


def test_spanish_tomorrow() -> None:
    [text] = replies.are_you_open(ctx(IN_SEASON_NOW, "es"), "abren mañana?")
    assert text.startswith("El jueves 15 de julio de 2027 toca Lumen")


def test_spanish_closed_tuesday_names_the_next_open_night() -> None:
    [text] = replies.whats_on(ctx(IN_SEASON_NOW, "es"), "q hay el 3 de agosto de 2027")
    assert text.startswith("El martes 3 de agosto de 2027 cerramos")
    assert "La próxima noche que abrimos es el miércoles 4 de agosto de 2027: Foam & Fire" in text


def test_spanish_line_up_on_an_event_date() -> None:
    [text] = replies.whats_on(ctx(OFF_SEASON_NOW, "es"), "quien pincha el 17 de julio de 2027")
    assert text.startswith("El sábado 17 de julio de 2027 toca Aurora 20th Anniversary")
    for artist in ("Mara Kessel", "Lenny Okafor", "Sol Bravo", "Petra Lind"):
        assert artist in text
    assert "80 € online" in text and "95 € en taquilla" in text


def test_spanish_event_by_its_spanish_name() -> None:
    """'la fiesta de cierre' reaches the action as the event_name 'closing party' (synonym)."""
    [text] = replies.ticket_prices(ctx(OFF_SEASON_NOW, "es"), "cuanto vale la fiesta de cierre",
                                   ["closing party"])
    assert text == ("Entradas para Closing Party 2027 el sábado 9 de octubre de 2027: 75 € online, "
                    "90 € en taquilla. Cómpralas en https://aurora-ibiza.example/tickets.")


def test_spanish_weekday_night_and_prices() -> None:
    texts_ = replies.whats_on(ctx(IN_SEASON_NOW, "es"), "q hay el sabado")
    assert texts_ == [texts_[0]] and texts_[0].startswith("Cada sábado toca Nocturne")
    assert "Mara Kessel & Lenny Okafor" in texts_[0] and "07:00" in texts_[0]
    [price] = replies.ticket_prices(ctx(IN_SEASON_NOW, "es"), "cuanto es el domingo")
    assert price.startswith("El domingo es Sunday Social") and "40 € online" in price


def test_spanish_a_weekday_we_never_open() -> None:
    [text] = replies.ticket_prices(ctx(IN_SEASON_NOW, "es"), "y el martes?")
    assert text.startswith("No abrimos ningún martes en toda la temporada")
    assert "Nocturne" in text


def test_spanish_this_weekend_off_season_is_one_message() -> None:
    [text] = replies.whats_on(ctx(OFF_SEASON_NOW, "es"), "q hay este finde")
    assert text.startswith("Del viernes 27 de noviembre de 2026 al domingo 29 de noviembre de "
                           "2026 estamos fuera de temporada")
    assert "viernes 28 de mayo de 2027" in text


def test_spanish_overview_and_event_details() -> None:
    overview = replies.whats_on(ctx(IN_SEASON_NOW, "es"), "q eventos teneis")
    assert "Los martes cerramos" in overview[0] and "Full Moon Terrace" in overview[0]
    [event] = replies.whats_on(ctx(IN_SEASON_NOW, "es"), "line up de la luna llena",
                               ["full moon"])
    assert event.startswith("Full Moon Terrace es el domingo 15 de agosto de 2027")
    [night] = replies.whats_on(ctx(IN_SEASON_NOW, "es"), "que es nocturne", ["nocturne"])
    assert night.startswith("Nocturne es nuestra fiesta de cada sábado")


def test_spanish_prices_overview() -> None:
    [text] = replies.ticket_prices(ctx(IN_SEASON_NOW, "es"), "cuanto cuestan las entradas")
    assert "40–55 € online" in text and "55–70 € en taquilla" in text


def test_spanish_lost_property_report_summary() -> None:
    report = {"item": "iPhone negro", "when": "el sábado a las 4", "description": "funda verde",
              "contact": "fan@example.com"}
    text = replies.lost_property_summary(ctx(OFF_SEASON_NOW, "es"), report)
    assert text.startswith("Gracias, ya he registrado tu aviso: iPhone negro (el sábado a las 4)")
    assert "fan@example.com" in text and "30 días" in text and "18:00-20:00" in text


# --- Spanish through the actions (the switchboard says the fan's language in the metadata) -----

ES = {"language": "es"}


async def run(action, tracker) -> list[dict]:
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, tracker, DOMAIN)
    return dispatcher.messages


async def test_spanish_fallback_then_offer_a_person(off_season_desk) -> None:
    [first] = await run(bot_actions.ActionFallback(off_season_desk),
                        make_tracker("blorp", "nlu_fallback", metadata=ES))
    assert first["text"].startswith("Perdona, no lo he entendido")
    [second] = await run(bot_actions.ActionFallback(off_season_desk),
                         make_tracker("zzz", "out_of_scope", metadata=ES,
                                      history=[user_event("blorp", "nlu_fallback")]))
    assert second["text"].startswith("Sigo sin entenderlo")
    assert [button["title"] for button in second["buttons"]] == ["Sí, con una persona",
                                                                 "No, gracias"]


async def test_spanish_vip_offer_buttons(off_season_desk) -> None:
    messages = await run(bot_actions.ActionVipTables(off_season_desk),
                         make_tracker("cuanto cuesta una mesa vip", "vip_tables", metadata=ES))
    assert "1500 €" in messages[0]["text"] and messages[-1]["text"].startswith("¿Te paso")
    assert [button["title"] for button in messages[-1]["buttons"]] == ["Sí, reservar mesa",
                                                                       "No, gracias"]


async def test_spanish_press_and_deny(off_season_desk) -> None:
    press = await run(bot_actions.ActionPressEnquiry(off_season_desk),
                      make_tracker("soy periodista", "press_enquiry", metadata=ES))
    assert press[0]["text"].startswith("Prensa:")
    assert "press@aurora-ibiza.example" in press[0]["text"]
    [deny] = await run(bot_actions.ActionAnswer(off_season_desk),
                       make_tracker("no gracias", "deny", metadata=ES))
    assert deny["text"] == "Sin problema. Si te surge cualquier otra cosa, pregúntame."


@pytest.mark.parametrize("slot", bot_actions.LOST_PROPERTY_SLOTS)
async def test_spanish_lost_property_questions(slot, off_season_desk) -> None:
    action = next(cls for cls in bot_actions._AskLostSlot.__subclasses__() if cls.slot == slot)
    [message] = await run(action(off_season_desk),
                          make_tracker("he perdido el movil", "report_lost_item", metadata=ES))
    assert message["text"] == ANSWERS.templates[f"ask_{slot}"]["es"][0]


async def test_spanish_unreachable_contact(off_season_desk) -> None:
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    tracker = make_tracker("buscadlo vosotros", "inform", metadata=ES)
    await bot_actions.ValidateLostPropertyForm(off_season_desk).validate_lost_contact(
        "buscadlo vosotros", dispatcher, tracker, DOMAIN)
    assert dispatcher.messages[0]["text"].startswith("Necesito un email o un teléfono")


# --- German answers with the facts filled in --------------------------------------------------


@pytest.mark.parametrize(
    ("key", "facts"),
    [("greet", ["Aurora Ibiza"]), ("thanks", ["gern"]),
     ("request_human", ["Person aus unserem Team"]),
     ("where_to_buy", ["https://aurora-ibiza.example/tickets", "QR-Code", "18:00-20:00"]),
     ("getting_there", ["Discobus Linie 3", "15 Minuten", "400 Stellplätzen",
                        "Camí de sa Vorera 12"]),
     ("age_id", ["18 Jahren", "Führerschein"]),
     ("dress_code", ["Dresscode: Smart casual"]),
     ("lost_property_info", ["30 Tage", "lost@aurora-ibiza.example", "Guardia Civil"])],
)
def test_german_fact_answers_carry_the_fact(key: str, facts: list[str]) -> None:
    text = " ".join(replies.fact_answer(ctx(IN_SEASON_NOW, "de"), key))
    for fact in facts:
        assert fact.lower() in text.lower(), f"{key}: {fact!r} not in {text!r}"


def test_german_opening_hours() -> None:
    texts_ = replies.opening_hours(ctx(OFF_SEASON_NOW, "de"), "wann macht ihr auf")
    assert texts_[0].startswith("An Partynächten ist Einlass ab 23:30 Uhr")
    assert "06:30 Uhr" in texts_[0] and "07:00 Uhr" in texts_[0] and "03:30 Uhr" in texts_[0]
    assert texts_[-1].startswith("Gut zu wissen") and "28" in texts_[-1] and "2027" in texts_[-1]


def test_german_are_you_open() -> None:
    [closed] = replies.are_you_open(ctx(OFF_SEASON_NOW, "de"), "habt ihr heute offen?")
    assert closed.startswith("Am ") and "geschlossen" in closed and "außerhalb der Saison" in closed
    assert "26" in closed and "2026" in closed and "28" in closed and "2027" in closed
    [open_] = replies.are_you_open(ctx(IN_SEASON_NOW, "de"), "habt ihr heute offen?")
    assert open_.startswith("Am ") and "läuft Foam & Fire" in open_ and "50 € online" in open_


def test_german_closed_day_names_the_next_open_night() -> None:
    [text] = replies.are_you_open(ctx(IN_SEASON_NOW, "de"), "habt ihr am 3/8/2027 offen")
    assert "Dienstag ist bei uns immer Ruhetag" in text
    assert "Die nächste Partynacht ist am" in text and "Foam & Fire" in text


def test_german_ticket_prices() -> None:
    [friday] = replies.ticket_prices(ctx(IN_SEASON_NOW, "de"), "was kostet casa aurora")
    assert friday.startswith("Freitags läuft Casa Aurora")
    assert "65 € an der Abendkasse" in friday
    [event] = replies.ticket_prices(ctx(IN_SEASON_NOW, "de"), "was kostet die closing party",
                                    ["closing party"])
    assert event.startswith("Tickets für Closing Party 2027 am") and "90 €" in event
    [overview] = replies.ticket_prices(ctx(IN_SEASON_NOW, "de"), "was kostet der eintritt")
    assert "40–55 € online" in overview and "https://aurora-ibiza.example/tickets" in overview


def test_german_lost_property_report() -> None:
    report = {"item": "schwarzes iPhone", "when": "Samstag gegen 4", "description": "grüne Hülle",
              "contact": "fan@example.com"}
    text = replies.lost_property_summary(ctx(OFF_SEASON_NOW, "de"), report)
    assert text.startswith("Danke – ich habe deine Meldung aufgenommen: schwarzes iPhone")
    assert "fan@example.com" in text and "30 Tage" in text
    for key in ("ask_lost_item", "ask_lost_when", "ask_lost_description", "ask_lost_contact"):
        assert "?" in ctx(OFF_SEASON_NOW, "de").say(key)


def test_german_fallback_and_buttons() -> None:
    context = ctx(OFF_SEASON_NOW, "de")
    assert context.say("fallback_first").startswith("Sorry, das habe ich nicht ganz verstanden")
    assert context.say("fallback_offer_human").endswith("holen?")
    assert (context.say("button_yes_person"), context.say("button_no_thanks")) == (
        "Ja, bitte eine Person", "Nein danke")


def test_a_question_without_german_is_answered_in_english() -> None:
    assert ctx(OFF_SEASON_NOW, "de").say("water").startswith("Yes — free tap water")
