"""Answers are built from the fact sheet, the fan's words and the clock."""

from __future__ import annotations

import copy
import datetime as dt

import yaml

from actions import replies
from actions.answers import Answers
from actions.venue import Venue

from .conftest import IN_SEASON_NOW, OFF_SEASON_NOW, ROOT, make_desk

SEASON_OPENS = "Friday 28 May 2027"


def ctx(now: dt.datetime, language: str = "en", venue_file=None) -> replies.Context:
    return make_desk(now, venue_file).context(language)


def test_tonight_off_season_says_closed_and_when_it_reopens() -> None:
    [text] = replies.are_you_open(ctx(OFF_SEASON_NOW), "are you open tonight?")
    assert "closed" in text and "Thursday 26 November 2026" in text and SEASON_OPENS in text


def test_a_bare_weekday_off_season_gives_the_fact_and_the_reopening() -> None:
    texts = replies.ticket_prices(ctx(OFF_SEASON_NOW), "how much is Friday?")
    assert "Casa Aurora" in texts[0] and "50 €" in texts[0] and "65 €" in texts[0]
    assert SEASON_OPENS in texts[-1]


def test_whats_on_a_weekday_off_season() -> None:
    texts = replies.whats_on(ctx(OFF_SEASON_NOW), "what's on Wednesday?")
    assert "Foam & Fire" in texts[0] and "Ana Quintana" in texts[0]
    assert SEASON_OPENS in texts[-1]


def test_line_up_on_an_event_date() -> None:
    [text] = replies.whats_on(ctx(OFF_SEASON_NOW), "who is playing on 17 July 2027")
    assert "Aurora 20th Anniversary" in text
    for artist in ("Mara Kessel", "Lenny Okafor", "Sol Bravo", "Petra Lind"):
        assert artist in text
    assert "80 €" in text and "95 €" in text


def test_line_up_by_event_name() -> None:
    [text] = replies.whats_on(ctx(OFF_SEASON_NOW), "line up for the closing party?",
                              ["closing party"])
    assert "Closing Party 2027" in text and "Saturday 9 October 2027" in text


def test_closed_tuesday_in_season_names_the_next_open_night() -> None:
    [text] = replies.whats_on(ctx(IN_SEASON_NOW), "what's on 3 August 2027")
    assert "closed" in text and "Tuesday" in text
    assert "Wednesday 4 August 2027" in text and "Foam & Fire" in text


def test_tonight_in_season_at_2am_is_the_running_night() -> None:
    [text] = replies.are_you_open(ctx(IN_SEASON_NOW), "are you open tonight")
    assert "Wednesday 14 July 2027" in text and "Foam & Fire" in text


def test_this_weekend_off_season_is_one_message() -> None:
    texts = replies.whats_on(ctx(OFF_SEASON_NOW), "what's on this weekend")
    assert len(texts) == 1 and SEASON_OPENS in texts[0]


def test_plain_fact_answers_have_no_season_note_when_timeless() -> None:
    texts = replies.fact_answer(ctx(OFF_SEASON_NOW), "dress_code")
    assert texts == ["Dress code: Smart casual. Not allowed: swimwear, sports jerseys, "
                     "flip-flops, clothing with offensive slogans. Security has the final say "
                     "at the door."]


def test_opening_hours_off_season_carry_the_reopening_date() -> None:
    texts = replies.opening_hours(ctx(OFF_SEASON_NOW), "what time do you open")
    assert "23:30" in texts[0] and "03:30" in texts[0]
    assert SEASON_OPENS in texts[-1]
    in_season = replies.opening_hours(ctx(IN_SEASON_NOW), "what time do you open")
    assert len(in_season) == 1


def test_spanish_answers_for_the_commonest_questions() -> None:
    texts = replies.ticket_prices(ctx(OFF_SEASON_NOW, "es"), "cuanto cuesta el viernes")
    assert texts[0].startswith("El viernes es Casa Aurora")
    assert "viernes 28 de mayo de 2027" in texts[-1]


def test_a_changed_fact_changes_the_answer(tmp_path) -> None:
    raw = yaml.safe_load((ROOT / "data" / "venue.yml").read_text())
    changed = copy.deepcopy(raw)
    changed["weekly_nights"]["friday"]["ticket_online"] = 52
    changed["on_site"]["lockers"] = "12 euros, any size"
    venue_file = tmp_path / "venue.yml"
    venue_file.write_text(yaml.safe_dump(changed, allow_unicode=True))
    context = ctx(OFF_SEASON_NOW, venue_file=venue_file)
    assert "52 €" in replies.ticket_prices(context, "how much is friday")[0]
    assert "12 euros, any size" in replies.fact_answer(context, "cloakroom_lockers")[0]


def test_every_template_fills_from_the_facts_and_per_night_values() -> None:
    """No answer may ask for a value nobody provides (it would crash in front of a fan)."""
    answers = Answers.load(ROOT / "data" / "answers.yml")
    venue = Venue.load(ROOT / "data" / "venue.yml")
    provided = set(venue.template_facts()) | {
        "day", "weekday", "weekday_cap", "weekday_es", "weekday_de", "night_name", "genre",
        "residents",
        "ticket_online", "ticket_door", "closing", "event_name", "line_up", "next_open",
        "next_day", "next_name", "first", "last", "item", "when", "description", "contact",
    }
    for key, names in answers.placeholders().items():
        assert names <= provided, f"{key} needs {names - provided}"


def test_a_weekday_we_never_open() -> None:
    for build in (replies.whats_on, replies.ticket_prices):
        texts = build(ctx(IN_SEASON_NOW), "what about tuesday?")
        assert texts == [texts[0]] and "closed on Tuesdays" in texts[0]
        assert "Nocturne" in texts[0]  # and what the other nights are


def test_reviewed_answers_join_the_hand_written_ones_and_reload(tmp_path):
    """Answers of operator-created intents come from their own file, picked up when it appears
    or changes, and never override a hand-written key."""
    import os
    import time

    from actions.desk import Desk
    from actions.settings import BotSettings

    reviewed = tmp_path / "answers.reviewed.yml"
    settings = BotSettings.from_env({"REVIEWED_ANSWERS_FILE": str(reviewed)})
    desk = Desk(settings)
    assert "lineup_compliment" not in desk.answers
    reviewed.write_text("answers:\n  lineup_compliment:\n    en: ['Glad you like it!']\n"
                        "  greet:\n    en: ['not this one']\n")
    assert desk.answers.variants("lineup_compliment", "en") == ["Glad you like it!"]
    assert "not this one" not in desk.answers.variants("greet", "en")
    reviewed.write_text("answers:\n  lineup_compliment:\n    en: ['Thank you!']\n")
    later = time.time() + 5
    os.utime(reviewed, (later, later))
    assert desk.answers.variants("lineup_compliment", "en") == ["Thank you!"]
