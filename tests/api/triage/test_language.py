from __future__ import annotations

import pytest

from api.triage.engine import Triage


@pytest.mark.parametrize(("text", "lang"), [
    ("i can't find my friend anywhere", "en"), ("no encuentro a mi amiga", "es"),
    ("wo ist die Garderobe bitte", "de"), ("hoe laat gaan de deuren open", "nl"),
    ("à quelle heure ouvrez-vous ce soir", "fr"), ("a che ora aprite stasera", "it"),
])
def test_language(triage: Triage, text: str, lang: str) -> None:
    assert triage.languages.guess(text) == lang


def test_short_messages_lean_on_the_thread(triage: Triage) -> None:
    assert triage.languages.guess("ok", ["hola, ¿a qué hora abrís esta noche?"]) == "es"
    assert triage.languages.guess("ok") in {"en", "es"}


def test_decision_carries_language(triage: Triage) -> None:
    assert triage.assess_and_decide("me están acosando").language == "es"
