"""The language the actions answer in: the switchboard's decision (``metadata.language``), else
a ``language`` slot, else English; the languages are those of data/answers.yml; an answer the
fan's language lacks comes in English after one line saying so."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as bot_actions
from actions.answers import NOT_IN_YOUR_LANGUAGE, Answers, answer_language
from actions.desk import Desk
from actions.settings import BotSettings
from actions.venue import Venue

from .conftest import OFF_SEASON_NOW, ROOT, make_tracker

ANSWERS = Answers.load(ROOT / "data" / "answers.yml")
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
ES_LINE = "Todavía no tengo esta respuesta en español, aquí va en inglés:"
DE_LINE = "Diese Antwort habe ich noch nicht auf Deutsch, hier auf Englisch:"


def greetings(language: str) -> set[str]:
    facts = Venue.load(ROOT / "data" / "venue.yml").template_facts()
    return {template.format_map(facts) for template in ANSWERS.variants("greet", language)}


def spanish_greeting(text: str) -> bool:
    return text in greetings("es")


async def run(action, tracker) -> list[dict]:
    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, tracker, DOMAIN)
    return dispatcher.messages


def with_metadata(text: str, intent: str, metadata: dict | None = None, **kw):
    """A tracker as Rasa builds it: the metadata on ``latest_message`` and on the user event."""
    tracker = make_tracker(text, intent, metadata=metadata, **kw)
    if metadata is not None:
        tracker.latest_message["metadata"] = metadata
    return tracker


# -- which language ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metadata", "slots", "expected"),
    [
        ({"language": "es"}, {}, "es"),
        ({"language": "es-ES"}, {}, "es"),
        ({"language": "en"}, {"language": "es"}, "en"),  # the switchboard's decision wins
        ({"language": "fr"}, {}, "en"),  # no texts in French: English
        ({}, {"language": "es"}, "es"),  # rasa shell / conversation tests with a slot
        ({}, {}, "en"),
        (None, None, "en"),
    ],
)
def test_answer_language(metadata, slots, expected) -> None:
    assert answer_language(metadata, slots, frozenset({"en", "es", "de"})) == expected


def test_the_languages_are_those_of_the_answers_file() -> None:
    assert {"en", "es"} <= ANSWERS.languages
    assert all(len(code) == 2 for code in ANSWERS.languages)  # no flags (season_note)


def test_every_language_of_the_answers_can_say_an_answer_is_not_in_it() -> None:
    missing = sorted(code for code in ANSWERS.languages - {"en"}
                     if not ANSWERS.has_text(NOT_IN_YOUR_LANGUAGE, code))
    assert not missing, f"no {NOT_IN_YOUR_LANGUAGE} line for {missing}"
    assert ANSWERS.variants(NOT_IN_YOUR_LANGUAGE, "es") == [ES_LINE]
    assert ANSWERS.variants(NOT_IN_YOUR_LANGUAGE, "de") == [DE_LINE]


async def test_the_switchboard_language_picks_the_answer(off_season_desk) -> None:
    greet = bot_actions.ActionAnswer(off_season_desk)
    [es] = await run(greet, with_metadata("ok", "greet", {"language": "es"}))
    assert spanish_greeting(es["text"])
    # the words do not matter: a Spanish word with the switchboard's English is English
    [en] = await run(greet, with_metadata("hola", "greet", {"language": "en"}))
    assert en["text"] in greetings("en")


async def test_metadata_on_the_user_event_only_is_read_too(off_season_desk) -> None:
    [es] = await run(bot_actions.ActionAnswer(off_season_desk),
                     make_tracker("ok", "greet", metadata={"language": "es"}))
    assert spanish_greeting(es["text"])


async def test_without_metadata_english_or_the_language_slot(off_season_desk) -> None:
    greet = bot_actions.ActionAnswer(off_season_desk)
    [plain] = await run(greet, make_tracker("hola", "greet"))
    assert plain["text"] in greetings("en")  # no guessing from the words any more
    [slot] = await run(greet, make_tracker("hi", "greet", slots={"language": "es"}))
    assert spanish_greeting(slot["text"])


async def test_the_lost_property_form_asks_in_the_fans_language(off_season_desk) -> None:
    dispatcher = CollectingDispatcher()
    tracker = with_metadata("nada", "inform", {"language": "es"},
                            active_loop="lost_property_form")
    await bot_actions.ValidateLostPropertyForm(off_season_desk).validate_lost_contact(
        "nada", dispatcher, tracker, DOMAIN)
    assert dispatcher.messages[0]["text"] == ANSWERS.variants("invalid_lost_contact", "es")[0]


# -- an answer the fan's language does not have yet ----------------------------------------------
@pytest.fixture
def partial_desk(tmp_path) -> Desk:
    """Answers where ``dress_code`` and ``request_human`` have no Spanish or German text."""
    answers = {"answers": {
        "greet": {"en": ["Hi!"], "es": ["¡Hola!"], "de": ["Hallo!"], "fr": ["Salut !"]},
        "dress_code": {"en": ["Smart casual, please."]},
        "lockers": {"en": ["Lockers by the door."]},
        "request_human": {"en": ["Getting you a person."]},
        NOT_IN_YOUR_LANGUAGE: {"es": [ES_LINE], "de": [DE_LINE]},
    }}
    path = tmp_path / "answers.yml"
    path.write_text(yaml.safe_dump(answers, allow_unicode=True), encoding="utf-8")
    settings = dataclasses.replace(BotSettings.from_env({}), answers_file=path,
                                   reviewed_answers_file=tmp_path / "none.yml")
    return Desk(settings, clock=lambda: OFF_SEASON_NOW)


@pytest.mark.parametrize(("language", "line"), [("es", ES_LINE), ("de", DE_LINE)])
async def test_english_answer_after_one_line_in_the_fans_language(partial_desk, language,
                                                                 line) -> None:
    [message] = await run(bot_actions.ActionAnswer(partial_desk),
                          with_metadata("x", "dress_code", {"language": language}))
    assert message["text"] == f"{line}\nSmart casual, please."


async def test_no_line_when_the_text_exists_or_the_fan_writes_english(partial_desk) -> None:
    [es] = await run(bot_actions.ActionAnswer(partial_desk),
                     with_metadata("x", "greet", {"language": "es"}))
    assert es["text"] == "¡Hola!"
    [en] = await run(bot_actions.ActionAnswer(partial_desk),
                     with_metadata("x", "dress_code", {"language": "en"}))
    assert en["text"] == "Smart casual, please."


async def test_no_line_in_a_language_that_cannot_say_it(partial_desk) -> None:
    """French is in the file (a greeting) but has no "not in your language" line."""
    [fr] = await run(bot_actions.ActionAnswer(partial_desk),
                     with_metadata("x", "dress_code", {"language": "fr"}))
    assert fr["text"] == "Smart casual, please."


def test_the_line_comes_once_per_turn(partial_desk) -> None:
    ctx = partial_desk.context("es")
    texts = ctx.with_language_notice([ctx.say("greet"), ctx.say("dress_code"),
                                      ctx.say("lockers")])
    assert texts == ["¡Hola!", f"{ES_LINE}\nSmart casual, please.", "Lockers by the door."]
    assert ctx.with_language_notice([ctx.say("lockers")]) == ["Lockers by the door."]


async def test_a_handoff_text_gets_the_line_and_the_custom_item_none(partial_desk) -> None:
    messages = await run(bot_actions.ActionRequestHuman(partial_desk),
                         with_metadata("x", "request_human", {"language": "de"}))
    assert messages[0]["text"] == f"{DE_LINE}\nGetting you a person."
    assert "text" not in messages[1] or not messages[1]["text"]
