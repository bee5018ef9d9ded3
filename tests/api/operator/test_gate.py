"""The activation gate (pure)."""

from __future__ import annotations

from api.registry.gate import GatePolicy, judge, summarise

POLICY = GatePolicy(max_macro_f1_drop=0.01, min_intent_f1=0.8)


def summary(macro: float, per_intent: dict[str, float], failed: int = 0) -> dict:
    return {"accuracy": macro, "macro_f1": macro, "per_intent_f1": per_intent,
            "conversations": {"stories": 10, "failed": failed, "failed_names": []}}


def test_equal_or_better_passes():
    active = summary(0.95, {"greet": 0.9, "refunds": 0.85})
    assert judge(summary(0.95, {"greet": 0.9, "refunds": 0.85}), active, POLICY).passed
    assert judge(summary(0.96, {"greet": 0.95, "refunds": 0.9}), active, POLICY).passed


def test_macro_f1_may_fall_by_the_tolerance_only():
    active = summary(0.95, {"greet": 0.9})
    assert judge(summary(0.941, {"greet": 0.9}), active, POLICY).passed
    verdict = judge(summary(0.93, {"greet": 0.9}), active, POLICY)
    assert not verdict.passed and "macro-F1 fell from 0.950 to 0.930" in verdict.reasons[0]


def test_no_intent_may_fall_below_the_floor():
    active = summary(0.95, {"greet": 0.9, "refunds": 0.85})
    verdict = judge(summary(0.95, {"greet": 0.9, "refunds": 0.7}), active, POLICY)
    assert not verdict.passed
    assert verdict.reasons == ["intent refunds F1 0.70 is under 0.8 (was 0.85)"]


def test_an_intent_already_under_the_floor_must_not_get_worse():
    active = summary(0.95, {"greet": 0.9, "jobs": 0.6})
    assert judge(summary(0.95, {"greet": 0.9, "jobs": 0.6}), active, POLICY).passed
    assert judge(summary(0.95, {"greet": 0.9, "jobs": 0.7}), active, POLICY).passed
    assert not judge(summary(0.95, {"greet": 0.9, "jobs": 0.5}), active, POLICY).passed


def test_a_new_intent_must_reach_the_floor_and_conversations_must_not_break():
    active = summary(0.95, {"greet": 0.9})
    assert not judge(summary(0.95, {"greet": 0.9, "new": 0.5}), active, POLICY).passed
    verdict = judge(summary(0.95, {"greet": 0.9}, failed=1), active, POLICY)
    assert not verdict.passed and "conversation test" in verdict.reasons[0]


def test_first_model_only_absolute_checks():
    assert judge(summary(0.5, {"greet": 0.9}), None, POLICY).passed
    assert not judge(summary(0.5, {"greet": 0.7}), None, POLICY).passed


def test_summarise_a_report():
    report = {"nlu": {"examples": 3, "accuracy": 0.9, "macro_f1": 0.8, "weighted_f1": 0.85,
                      "per_intent": {"greet": {"f1": 1.0, "support": 2},
                                     "nlu_fallback": {"f1": 0.0, "support": 0}}},
              "oos": {"examples": 2, "caught": 1, "rate": 0.5},
              "conversations": {"stories": 4, "failed": 0, "failed_names": []},
              "messages": [{"id": 1, "correct": True}, {"id": 2, "correct": False}]}
    s = summarise(report)
    assert s["per_intent_f1"] == {"greet": 1.0}  # predicted-only labels are not intents
    assert (s["oos_caught"], s["reviewed_correct"], s["reviewed_total"]) == (0.5, 1, 2)
