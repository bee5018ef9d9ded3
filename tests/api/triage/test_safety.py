"""Every safety rule, English and Spanish, with casual spellings; and the non-alarms."""

from __future__ import annotations

import pytest

from api.triage.engine import Triage
from api.triage.patterns import make_docs
from api.triage.safety import RULES, SafetyResult
from api.triage.text import normalise

# (message, expected topic, the rule that must fire)
ALARMS: list[tuple[str, str, str]] = [
    ("cant find my m8", "lost_person", "cant_find_friend"),
    ("I can't find my friend and she's not answering", "lost_person", "cant_find_friend"),
    ("cnt find my freind anywhere", "lost_person", "cant_find_friend"),
    ("where is my sister gone", "lost_person", "cant_find_friend"),
    ("lost my mates near the main stage", "lost_person", "lost_friend"),
    ("my bestie has gone missing", "lost_person", "lost_friend"),
    ("got separated from my group", "lost_person", "lost_friend"),
    ("havent seen my bf in 2 hours", "lost_person", "lost_friend"),
    ("my friend isnt answering", "lost_person", "friend_unreachable"),
    ("lost track of my mates after the set", "lost_person", "lost_track"),
    ("where the hell is my brother", "lost_person", "cant_find_friend"),
    ("been looking for my gf everywhere", "lost_person", "person_ref"),
    ("my cousin hasnt come back and its been ages", "lost_person", "unreachable_hint"),
    # two supports: one of ours + unreachable, in any order
    ("my friend has been gone for ages and wont pick up", "lost_person", "person_ref"),
    ("cant reach my sister", "lost_person", "unreachable_hint"),
    ("mi amigo se ha ido y no contesta al movil", "lost_person", "persona_ref"),
    ("this guy keeps rubbing against me", "harassment", "pester_hint"),
    ("some bloke won't go away", "harassment", "harasser_ref"),
    ("un chico me está molestando y no se va", "harassment", "acosador_ref"),
    ("mi amiga no aparece, no encuentro a mi amiga", "lost_person", "no_encuentro"),
    ("no encontramos a nuestro amigo", "lost_person", "no_encuentro"),
    ("he perdido a mi hermano", "lost_person", "no_encuentro"),
    ("mi novio ha desaparecido", "lost_person", "no_encuentro"),
    ("mi amigo no contesta", "lost_person", "no_contesta"),
    ("spiked", "safety", "spiked"),
    ("drink was spiked", "safety", "spiked"),
    ("someone put something in my drink", "safety", "spiked"),
    ("sum1 put smth in my drink", "safety", "spiked"),
    ("i think ive been drugged", "safety", "spiked"),
    ("my drink tasted funny", "safety", "spiked"),
    ("i want to die", "safety", "self_harm"),
    ("i wanna die", "safety", "self_harm"),
    ("gonna kill myself", "safety", "self_harm"),
    ("i dont want to live anymore", "safety", "self_harm"),
    ("thinking about suicide", "safety", "self_harm"),
    ("i keep thinking about ending it", "safety", "self_harm"),
    ("i cant do this anymore", "safety", "self_harm"),
    ("having a really bad trip", "safety", "distress"),
    ("i think im having a panic attack", "safety", "distress"),
    ("im so scared", "safety", "distress"),
    ("i dont feel safe", "safety", "distress"),
    ("i feel really sick", "safety", "distress"),
    ("please help", "safety", "distress"),
    ("there's a fight by the bar", "safety", "distress"),
    ("me han drogado", "safety", "drogado"),
    ("creo que me han drogao", "safety", "drogado"),
    ("creo que me echaron algo en la copa", "safety", "drogado"),
    ("quiero morirme", "safety", "autolesion"),
    ("me quiero morir", "safety", "autolesion"),
    ("no puedo mas", "safety", "autolesion"),
    ("me siento muy mal", "safety", "malestar"),
    ("tengo mucho miedo", "safety", "malestar"),
    ("ataque de panico", "safety", "malestar"),
    ("socorro", "safety", "malestar"),
    ("my friend collapsed", "medical", "collapsed"),
    ("she passed out", "medical", "collapsed"),
    ("he fainted", "medical", "collapsed"),
    ("he's not breathing", "medical", "collapsed"),
    ("she's having a seizure", "medical", "collapsed"),
    ("my mate od'd", "medical", "collapsed"),
    ("we need an ambulance", "medical", "collapsed"),
    ("she hit her head", "medical", "collapsed"),
    ("her lips are blue", "medical", "collapsed"),
    ("my friend fell down the stairs", "medical", "collapsed"),
    ("my heart is racing", "medical", "collapsed"),
    ("he cant stand up properly", "medical", "collapsed"),
    ("mi amiga se ha desmayado", "medical", "desmayo"),
    ("no respira", "medical", "desmayo"),
    ("no se tiene en pie", "medical", "desmayo"),
    ("me duele mucho el pecho", "medical", "desmayo"),
    ("mi amiga no se despierta", "medical", "desmayo"),
    ("llamad a una ambulancia", "medical", "collapsed"),  # "ambulancia" is one typo from English
    ("he touched me", "harassment", "touched"),
    ("some guy groped me", "harassment", "touched"),
    ("being followed", "harassment", "touched"),
    ("a man is following me", "harassment", "touched"),
    ("he wont leave me alone", "harassment", "touched"),
    ("i was assaulted", "harassment", "touched"),
    ("he keeps trying to kiss me", "harassment", "touched"),
    ("a man exposed himself", "harassment", "touched"),
    ("someone harrassing my friend", "harassment", "touched"),
    ("some guy punched my mate", "harassment", "hit"),
    ("he beat him up outside", "harassment", "hit"),
    ("me están acosando", "harassment", "acoso"),
    ("me estan acosando", "harassment", "acoso"),
    ("un tio me ha tocado", "harassment", "acoso"),
    ("me estan siguiendo", "harassment", "acoso"),
    ("no me deja en paz", "harassment", "acoso"),
    ("un hombre me ha seguido", "harassment", "acoso"),
    ("me han metido mano", "harassment", "acoso"),
]

NON_ALARMS = [
    "lost my phone", "is there first aid?", "where is the welfare team", "i'm dying to come",
    "this line up is sick", "killer set", "can't find my friend's jacket",
    "can you help me with tickets?", "what time do doors open?", "the bass killed it",
    "my friends arrive at 2, can they get in?", "he perdido el móvil", "¿hay primeros auxilios?",
    "tengo ganas de ir", "the drop was mental", "can i bring my medication?",
    "i'm sick of the rain lol what's on tonight", "¿dónde está el equipo de bienestar?",
    "security kicked me out", "where is my friends jacket",
    "my friends are coming in an hour", "this guy keeps playing bangers",
    "my friend is away this weekend, can i transfer her ticket?",
    "the dj won't stop playing house lol", "my mate can't come, can i sell his ticket?",
    "mis amigos llegan en una hora", "el chico de la taquilla fue majísimo",
    "what a trip that set was", "we're so high up on the terrace, amazing view",
    "thinking about ending the night at the terrace",
]


def match(triage: Triage, text: str) -> SafetyResult:
    norm = normalise(text)
    return triage.safety.match(text, norm, make_docs(triage.pipelines, norm))


@pytest.mark.parametrize(("text", "topic", "rule"), ALARMS)
def test_alarm(triage: Triage, text: str, topic: str, rule: str) -> None:
    result = match(triage, text)
    assert result.topic == topic, result
    assert rule in {h.rule for h in result.hits}, result


@pytest.mark.parametrize("text", NON_ALARMS)
def test_non_alarm(triage: Triage, text: str) -> None:
    assert match(triage, text).topic is None


def test_every_trigger_rule_is_tested() -> None:
    tested = {rule for _, _, rule in ALARMS}
    triggers = {r.name for r in RULES if r.kind.value == "trigger"}
    assert triggers <= tested, triggers - tested


def test_reason_quotes_the_fans_words(triage: Triage) -> None:
    result = match(triage, "I CANT find my m8, shes not answering")
    assert result.reason == "safety: 'CANT find my m8' + 'not answering'"


def test_support_alone_is_not_an_alarm(triage: Triage) -> None:
    assert match(triage, "the box office is not answering").topic is None


def test_several_topics_pick_medical_first(triage: Triage) -> None:
    result = match(triage, "my drink was spiked and my friend collapsed")
    assert result.topic == "medical"
    assert "'spiked'" in (result.reason or "")
