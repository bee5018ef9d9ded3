"""The labelled handoff set: accuracy floors (set from measurement, so regressions fail)."""

from __future__ import annotations

from api.triage.evalset import load_cases, score
from api.triage.patterns import make_docs
from api.triage.text import normalise
from api.triage.train import fan_files, read_fan_tsv

# Measured 2026-11: accuracy 1.00 / topic 0.99 with both the GoEmotions model and the small
# own-data model; safety recall 60/60; no false handoffs. Floors leave room for model noise only.
MIN_ACCURACY = 0.95
MIN_TOPIC_ACCURACY = 0.93
MIN_SAFETY_RECALL = 1.0
MAX_FALSE_HANDOFFS = 1


def test_set_is_big_enough_and_separate_from_training_data() -> None:
    cases = load_cases()
    assert len(cases) >= 150
    assert sum("safety" in c.tags for c in cases) >= 40
    assert sum("must_not" in c.tags for c in cases) >= 40
    assert len({c.id for c in cases}) == len(cases)
    trained = {r.text.strip().lower() for f in fan_files() for r in read_fan_tsv(f)}
    texts = {c.text.strip().lower() for c in cases} | {
        t.text.strip().lower() for c in cases for t in c.turns}
    assert not texts & trained


def test_accuracy_floors(triage) -> None:
    def safety_topic(text: str):
        norm = normalise(text)
        return triage.safety.match(text, norm, make_docs(triage.pipelines, norm)).topic

    out = score(load_cases(), lambda c: triage.assess_and_decide(
        c.text, c.turns, c.parse, c.bot_items), safety_topic)
    assert out.safety_recall >= MIN_SAFETY_RECALL, out.wrong
    assert out.accuracy >= MIN_ACCURACY, out.wrong
    assert out.topic_accuracy >= MIN_TOPIC_ACCURACY, out.wrong
    assert len(out.false_handoffs) <= MAX_FALSE_HANDOFFS, out.false_handoffs
