"""The semantic layer, with the trained model the product serves (models/triage-semantic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.triage import Trigger
from api.triage.engine import Triage
from api.triage.semantic import LABELS, Kind


@pytest.mark.parametrize(("text", "topics"), [
    ("my friend is lying by the toilets and won't open her eyes", {"medical"}),
    ("she went to the loo an hour ago and her bag is still here, phone goes to voicemail",
     {"lost_person"}),
    ("mi colega lleva un rato en el suelo del baño con los ojos en blanco", {"medical"}),
    ("meine Freundin ist seit einer Stunde weg und geht nicht ans Handy", {"lost_person"}),
    ("ma pote tremble de partout et elle n'arrive plus à parler", {"medical", "safety"}),
])
def test_an_emergency_in_other_words_skips_the_bot_and_says_why(triage: Triage, text: str,
                                                                  topics: set[str]) -> None:
    a = triage.before_bot(text)
    assert not a.safety.urgent  # no pattern knows these words: the semantic layer reads them
    assert a.skip_bot and a.semantic.urgent, a.semantic
    d = triage.after_bot(a)
    assert d.handoff and d.priority.value == "urgent" and Trigger.SAFETY in d.triggers
    assert LABELS[a.semantic.label].kind is Kind.URGENT
    assert d.topic in topics, d
    assert "closest known case: '" in d.reasons[0]


@pytest.mark.parametrize("text", [
    "that drop killed me lol",
    "i'm dying to come back next summer",
    "we got absolutely wrecked last night, best night ever",
    "is there a first aid point inside?",
    "what time do you open tonight",
    "ugh third time asking, how much are tickets for saturday",
    "me muero de ganas de ir al closing",
])
def test_idioms_and_routine_questions_stay_with_the_bot(triage: Triage, text: str) -> None:
    d = triage.assess_and_decide(text)
    assert not d.handoff, d


def test_grief_is_met_by_a_person_with_care_at_the_first_message(triage: Triage) -> None:
    d = triage.assess_and_decide("my dad died on tuesday and the funeral is on saturday, "
                                 "i had tickets for the closing")
    assert d.handoff and Trigger.NEEDS_PERSON in d.triggers and d.care
    assert d.priority.value != "urgent" and d.topic == "general"


def test_a_pattern_hit_keeps_its_precise_reason(triage: Triage) -> None:
    a = triage.before_bot("i think my drink was spiked")
    assert a.safety.urgent and a.pattern_alarm and a.skip_bot
    assert triage.after_bot(a).reasons[0].startswith("safety: '")


@pytest.mark.parametrize("text", [
    "the drop at 2:30 nearly gave me a heart attack, who was the dj",
    "what happens if someone gets spiked at your club? what do you actually do?",
    "casi me da un infarto al ver los precios de las mesas vip jaja",
])
def test_the_semantic_layer_overrules_a_pattern_on_idioms_and_questions(triage: Triage,
                                                                        text: str) -> None:
    a = triage.before_bot(text)
    assert a.safety.urgent and a.overruled and not a.skip_bot, a.meaning
    assert not triage.after_bot(a).handoff


def test_meaning_runs_apart_for_the_relay(triage: Triage) -> None:
    text = "my friend is lying by the toilets and won't open her eyes"
    first = triage.before_bot(text, meaning=False)
    assert not first.skip_bot and first.semantic is None
    assert first.with_meaning(triage.meaning(text)).skip_bot


def test_semantic_training_is_deterministic(tmp_path: Path) -> None:
    from api.triage.semantic import MODEL_FILE
    from api.triage.semantic_train import SemanticConfig, train

    data = tmp_path / "data"
    data.mkdir()
    nlu = tmp_path / "nlu"
    nlu.mkdir()
    rows = ["medical\ten\tmy friend collapsed", "medical\ten\the is not breathing",
            "medical\ten\tshe fainted by the bar", "medical\ten\the is fitting on the floor",
            "medical\ten\ther lips are blue", "personal\ten\tmy dad died yesterday",
            "personal\ten\tmy nan passed away", "personal\ten\tfuneral is on saturday",
            "personal\ten\tmy mum is in hospital", "personal\ten\ti lost my brother last week"]
    rows += [f"none\ten\t{t}" for t in ("what time do you open", "how much are tickets",
                                        "is there parking", "dress code?", "that drop killed me",
                                        "where is the cloakroom", "thanks!", "hello there",
                                        "do you sell water", "lost my jacket")]
    (data / "x.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (nlu / "a.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n'
                               "    - hi\n    - hey [friday](weekday)\n", encoding="utf-8")
    cfg = SemanticConfig(folds=2)
    metas = [train(tmp_path / f"m{i}", cfg=cfg, data_dir=data, nlu_dir=nlu, chatter=None,
                   quiet=True)
             for i in (1, 2)]
    assert metas[0] == metas[1]
    a, b = (np.load(tmp_path / f"m{i}" / MODEL_FILE) for i in (1, 2))
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key


def test_semantic_data_refuses_unknown_labels(tmp_path: Path) -> None:
    from api.triage.semantic_train import read_tsv

    bad = tmp_path / "bad.tsv"
    bad.write_text("# header\nmedicl\ten\tmy friend collapsed\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="bad.tsv:2"):
        read_tsv(bad)


def test_a_message_leaning_urgent_goes_to_a_person_not_the_bot_and_not_as_urgent(
        triage: Triage) -> None:
    """Between half the urgent threshold and the threshold: the topic's team checks it, with a
    high (not urgent) priority and the bot's routine answer held back."""
    from dataclasses import replace

    from api.triage.semantic import Leaning

    a = triage.before_bot("whats the highest point of the venue, asking for reasons")
    model = triage.semantic
    leaning = Leaning("safety", model.thresholds.urgent * 0.75, "a known case")
    calm = replace(a.meaning, label="none", urgent_p=leaning.probability, person_p=0.0,
                   leaning=leaning)
    unsure = {"intent": {"name": "venue_areas", "confidence": 0.6}}
    for parse in (None, unsure, {"intent": {"name": "nlu_fallback", "confidence": 0.55}}):
        d = triage.after_bot(a.with_meaning(calm), parse)
        assert d.handoff and d.triggers[0] is Trigger.MAYBE_URGENT, d
        assert d.priority.value == "high" and d.topic == "safety"
        assert d.reasons[0].startswith("might be an emergency: reads like the fan is in danger")
        assert "closest known case: 'a known case'" in d.reasons[0]
    # A question the bot knew well stays with the bot.
    sure = {"intent": {"name": "venue_areas", "confidence": 0.97}}
    assert not triage.after_bot(a.with_meaning(calm), sure).handoff


def test_the_model_marks_leaning_exactly_in_its_band(triage: Triage) -> None:
    model = triage.semantic
    texts = ["what time do you open tonight", "my friend is lying by the toilets and won't "
             "open her eyes", "is there a first aid point inside?", "she's not answering and "
             "it's been a while", "i don't think i'll need my ticket after tonight",
             "how high is the terrace", "the bass made my chest shake, is that normal?"]
    near, urgent = model.thresholds.near_urgent, model.thresholds.urgent
    assert 0 < near < urgent
    for v in model.classify_many(texts):
        assert (v.leaning is not None) == (near <= v.urgent_p < urgent), v
        if v.leaning is not None:
            assert LABELS[v.leaning.label].kind is Kind.URGENT and not v.urgent


def test_a_long_message_is_read_in_windows_that_cover_it():
    from api.triage.windows import MAX_WINDOWS, WHOLE_CHARS, WINDOW_CHARS, windows

    assert windows("my friend collapsed") == ["my friend collapsed"]
    assert windows("a" * WHOLE_CHARS) == ["a" * WHOLE_CHARS]  # what the layer was trained on
    text = " ".join(f"w{i}" for i in range(2000))
    parts = windows(text)
    assert 1 < len(parts) <= MAX_WINDOWS and all(len(p) <= WINDOW_CHARS for p in parts)
    assert parts[0].startswith("w0 ") and parts[-1].endswith("w1999")
    # Each window starts inside the one before: nothing is read only across a boundary.
    short = windows(" ".join(f"w{i}" for i in range(300)))
    for before, after in zip(short, short[1:], strict=False):
        assert after.split()[0] in before.split()
    assert windows("x" * 900) == ["x" * 900]  # one long word is its own window


def test_an_emergency_at_the_end_of_a_long_message_is_read(triage: Triage) -> None:
    """Found when the veto over patterns rose to 0.3: one embedding of 900 filler words put the
    emergency at its end under the veto, and the pattern's alarm was overruled."""
    urgent = "my friend collapsed at the bar and is not breathing, please help"
    text = "word " * 900 + urgent
    assert triage.semantic.classify(text).urgent_p < triage.policy.semantic_veto  # whole: lost
    assert triage.meaning(text).urgent  # in windows: read
    a = triage.before_bot(text)
    assert a.pattern_alarm and a.skip_bot


def test_a_pattern_alarm_the_layer_reads_under_the_veto_is_overruled(triage: Triage) -> None:
    """Fresh sets 9-11, scored held out: every emergency a pattern caught read 0.41 or more,
    and most of the patterns' false alarms under 0.3 — the veto sits there."""
    from dataclasses import replace

    a = triage.before_bot("i think my drink was spiked")
    assert a.safety.urgent
    assert triage.policy.semantic_veto == 0.3
    for urgent_p, alarm in ((0.29, False), (0.3, True), (0.41, True)):
        read = replace(a.meaning, label="none", urgent_p=urgent_p, person_p=0.0, leaning=None)
        assert a.with_meaning(read).pattern_alarm is alarm, urgent_p
