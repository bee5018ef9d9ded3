"""Complexity, explicit requests, repetition, fallback, bot handoff requests, decisions."""

from __future__ import annotations

import pytest

from api.triage.emotion import EmotionVerdict, Level
from api.triage.engine import DEFAULT_TOPICS, Policy, Triage, bot_requests, load_topics, repeats
from api.triage.schemas import FanTurn, Priority, Trigger, intent_of

OWNED = [
    ("i want my money back", "refund"),
    ("you charged me twice", "refund"),
    ("still waiting for my refund", "refund"),
    ("quiero que me devolváis el dinero, quiero mi reembolso", "refund"),
    ("me cobrasteis dos veces", "refund"),
    ("can i book a vip table for 6", "vip"),
    ("reservar mesa vip para el sábado", "vip"),
    ("i'm a journalist, press accreditation please", "press"),
    ("soy periodista", "press"),
    ("i'm a dj, can i send you my demo", "artists"),
    ("soy dj y quiero pinchar en vuestro club", "artists"),
    ("the bouncer was so rude", "complaint"),
    ("we got refused entry", "complaint"),
    ("they wouldn't let us in", "complaint"),
    ("security kicked me out for nothing", "complaint"),
    ("el de seguridad fue muy borde", "complaint"),
    ("no nos dejaron entrar", "complaint"),
]
EXPLICIT = [
    "talk to a human", "can i speak to someone real", "real person please",
    "hablar con una persona", "quiero hablar con alguien", "eres un bot?",
]
STAY = [
    "do you have lockers and how much?", "what time do doors open and is there a dress code?",
    "ugh the queue was long last time, what time do doors open?",
    "how much is a vip table?", "how do refunds work?", "¿tenéis taquillas y cuánto cuestan?",
    "how do i change the name on my ticket?", "hi", "thanks!",
]


@pytest.mark.parametrize(("text", "topic"), OWNED)
def test_owned_topics_hand_off_first_message(triage: Triage, text: str, topic: str) -> None:
    d = triage.assess_and_decide(text)
    assert d.handoff and d.topic == topic, d
    assert Trigger.OWNED_TOPIC in d.triggers
    assert d.priority == DEFAULT_TOPICS[topic]


@pytest.mark.parametrize("text", EXPLICIT)
def test_asking_for_a_person(triage: Triage, text: str) -> None:
    d = triage.assess_and_decide(text)
    assert d.handoff and d.topic == "general" and Trigger.EXPLICIT in d.triggers, d


def test_asking_for_a_person_keeps_the_evident_subject(triage: Triage) -> None:
    d = triage.assess_and_decide("can a real person call me about my refund")
    assert d.handoff and d.topic == "refund", d


@pytest.mark.parametrize("text", STAY)
def test_routine_stays_with_the_bot(triage: Triage, text: str) -> None:
    d = triage.assess_and_decide(text)
    assert not d.handoff, d


def test_two_cases_in_one_message(triage: Triage) -> None:
    d = triage.assess_and_decide(
        "please resend my tickets and i also need an invoice for my company")
    assert d.handoff and d.topic == "tickets" and Trigger.SEVERAL_CASES in d.triggers, d


def test_bot_handoff_request_is_honoured(triage: Triage) -> None:
    items = [{"custom": {"handoff_request": {"topic": "vip", "reason": "VIP table booking"}}}]
    d = triage.assess_and_decide("yes please", bot_custom_items=items)
    assert d.handoff and d.topic == "vip" and d.priority is Priority.NORMAL
    assert d.reasons == ["bot: VIP table booking"] and d.triggers == (Trigger.BOT_REQUEST,)


def test_bot_handoff_request_with_unknown_topic_goes_to_general(triage: Triage) -> None:
    items = [{"handoff_request": {"topic": "nonsense"}}]
    d = triage.assess_and_decide("yes", bot_custom_items=items)
    assert d.handoff and d.topic == "general"


def test_bot_requests_reads_both_shapes() -> None:
    assert bot_requests([{"custom": {"handoff_request": {"topic": "press", "reason": "r"}}},
                         {"handoff_request": {}}, {"text": "hi"}]) == [
        ("press", "r"), ("general", "the bot asked for a person")]


def test_safety_skips_the_bot_and_is_urgent(triage: Triage) -> None:
    a = triage.before_bot("cant find my m8")
    assert a.skip_bot
    d = triage.after_bot(a)
    assert d.handoff and d.topic == "lost_person" and d.priority is Priority.URGENT
    assert d.reasons[0] == "safety: 'cant find my m8'"


def test_fallback_twice_in_a_row(triage: Triage) -> None:
    fallback = {"intent": {"name": "nlu_fallback", "confidence": 0.3}}
    history = [FanTurn("the flamingo boat code", parse=fallback)]
    a = triage.before_bot("the promoter code for the flamingo", history)
    assert triage.after_bot(a, parse=fallback).handoff
    assert not triage.after_bot(a, parse={"intent": {"name": "greet", "confidence": 0.9}}).handoff
    alone = triage.before_bot("the promoter code for the flamingo")
    assert not triage.after_bot(alone, parse=fallback).handoff


def test_low_confidence_counts_as_fallback(triage: Triage) -> None:
    low = {"intent": {"name": "parking", "confidence": 0.4}}
    a = triage.before_bot("the car thing near the beach", [FanTurn("car beach thing", low)])
    d = triage.after_bot(a, parse=low)
    assert d.handoff and Trigger.FALLBACK in d.triggers


def test_history_parses_argument_overrides(triage: Triage) -> None:
    fallback = {"intent": {"name": "out_of_scope", "confidence": 0.9}}
    a = triage.before_bot("the boat code from the promoter")
    assert triage.after_bot(a, parse=fallback, history_parses=[fallback]).handoff


def test_repeating_oneself(triage: Triage) -> None:
    history = [FanTurn("what time do doors open?")]
    d = triage.assess_and_decide("what time do the doors open tonight??", history)
    assert d.handoff and Trigger.REPEATED in d.triggers


def test_repeats_is_pure() -> None:
    p = Policy()
    assert repeats("can i bring a bag inside", ["can i bring a bag inside ?"], p)
    assert not repeats("yes", ["yes"], p)
    assert not repeats("do you have lockers", ["what time do you open"], p)


def test_intent_of_reads_dicts_and_objects() -> None:
    class Intent:
        name, confidence = "greet", 0.9

    class Parse:
        intent = Intent()

    assert intent_of({"intent": {"name": "x", "confidence": 0.1}}) == ("x", 0.1)
    assert intent_of(Parse()) == ("greet", 0.9)
    assert intent_of(None) == (None, None)


def test_decision_as_dict(triage: Triage) -> None:
    d = triage.assess_and_decide("he touched me")
    assert d.as_dict()["priority"] == "urgent" and d.as_dict()["topic"] == "harassment"


def test_default_topics_match_staff_yml() -> None:
    from api.triage.engine import DEFAULT_STAFF_YML

    assert load_topics(DEFAULT_STAFF_YML) == DEFAULT_TOPICS


def test_health(triage: Triage) -> None:
    assert triage.ready and triage.health()["ready"]


def test_emotion_verdict_handoff_levels() -> None:
    assert EmotionVerdict(0.9, Level.RISING, "r").handoff
    assert not EmotionVerdict(0.9, Level.GRUMPY, None).handoff


def test_answers_to_a_form_are_not_fallbacks(triage: Triage) -> None:
    """A lost-property answer ("a black iphone 13") parses badly by nature: no handoff."""
    in_form = {"intent": {"name": "nlu_fallback", "confidence": 0.3},
               "active_loop": "lost_property_form"}
    history = [FanTurn("i lost my phone", parse=in_form)]
    a = triage.before_bot("black iphone 13 with a green case", history)
    assert not triage.after_bot(a, parse=in_form).handoff
    outside = {"intent": {"name": "nlu_fallback", "confidence": 0.3}, "active_loop": None}
    assert triage.after_bot(a, parse=outside, history_parses=[outside]).handoff


@pytest.mark.parametrize("text", [
    "i lost my phone last night, is there a lost and found?",
    "wrong name on my ticket, can you change the name please",
    "no me han llegado las entradas, me las podeis reenviar?",
])
def test_one_case_said_two_ways_is_one_case(triage: Triage, text: str) -> None:
    d = triage.assess_and_decide(text)
    assert Trigger.SEVERAL_CASES not in d.triggers, d


def test_two_different_cases_are_several(triage: Triage) -> None:
    d = triage.assess_and_decide("can you change the name on my ticket and also send me an "
                                 "invoice")
    assert Trigger.SEVERAL_CASES in d.triggers, d


def test_low_confidence_is_the_bots_own_fallback_threshold() -> None:
    import yaml

    from api.triage.engine import REPO_ROOT

    config = yaml.safe_load((REPO_ROOT / "config.yml").read_text())
    [fallback] = [c for c in config["pipeline"] if c["name"] == "FallbackClassifier"]
    assert Policy().low_confidence == fallback["threshold"]
