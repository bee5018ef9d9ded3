"""The activation gate: may a candidate model replace the active one? Pure.

A candidate passes when, on the held-out NLU test file and the conversation tests:

- its macro-F1 is not lower than the active model's by more than ``max_macro_f1_drop``;
- no intent falls below ``min_intent_f1``: every intent with test examples scores at least the
  floor, except one that was already under it with the active model, which must not get worse;
- it fails no more conversation tests than the active model.

Without an active model to compare with (the very first model), only the absolute checks apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GatePolicy:
    max_macro_f1_drop: float = 0.01
    min_intent_f1: float = 0.8


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed (empty when it passed)
    checks: list[str] = field(default_factory=list)  # what was checked, in words

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "checks": self.checks}


def judge(candidate: dict[str, Any], active: dict[str, Any] | None,
          policy: GatePolicy) -> Verdict:
    """``candidate`` / ``active``: evaluation summaries (``summarise`` of a report)."""
    reasons: list[str] = []
    checks: list[str] = []
    cand_f1 = candidate["macro_f1"]
    if active is not None:
        floor = active["macro_f1"] - policy.max_macro_f1_drop
        checks.append(f"macro-F1 {cand_f1:.3f} >= {floor:.3f} (active {active['macro_f1']:.3f}"
                      f" - {policy.max_macro_f1_drop})")
        if cand_f1 < floor - 1e-9:
            reasons.append(f"macro-F1 fell from {active['macro_f1']:.3f} to {cand_f1:.3f} "
                           f"(more than {policy.max_macro_f1_drop})")
    active_f1 = (active or {}).get("per_intent_f1") or {}
    checks.append(f"every intent F1 >= {policy.min_intent_f1}")
    for intent, f1 in sorted(candidate["per_intent_f1"].items()):
        if f1 >= policy.min_intent_f1:
            continue
        before = active_f1.get(intent)
        if before is not None and before < policy.min_intent_f1 and f1 >= before - 1e-9:
            continue  # already under the floor, and not worse
        was = f" (was {before:.2f})" if before is not None else ""
        reasons.append(f"intent {intent} F1 {f1:.2f} is under {policy.min_intent_f1}{was}")
    cand_conv, active_conv = candidate.get("conversations"), (active or {}).get("conversations")
    if cand_conv is not None:
        allowed = active_conv["failed"] if active_conv is not None else 0
        checks.append(f"conversation tests failed {cand_conv['failed']} <= {allowed}")
        if cand_conv["failed"] > allowed:
            names = ", ".join(cand_conv.get("failed_names") or [])
            reasons.append(f"{cand_conv['failed']} conversation test(s) fail (active model: "
                           f"{allowed}){': ' + names if names else ''}")
    return Verdict(not reasons, reasons, checks)


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the registry keeps from an evaluation report (scripts/evaluate_model.py)."""
    nlu = report["nlu"]
    conversations = report.get("conversations")
    oos = report.get("oos")
    messages = report.get("messages") or []
    return {
        "accuracy": nlu["accuracy"], "macro_f1": nlu["macro_f1"],
        "weighted_f1": nlu.get("weighted_f1"), "examples": nlu["examples"],
        "per_intent_f1": {k: v["f1"] for k, v in nlu["per_intent"].items()
                          if v.get("support", 0) > 0},
        "conversations": ({"stories": conversations["stories"],
                           "failed": conversations["failed"],
                           "failed_names": conversations.get("failed_names") or []}
                          if conversations else None),
        "oos_caught": oos["rate"] if oos else None,
        "reviewed_correct": sum(1 for m in messages if m.get("correct")),
        "reviewed_total": len(messages),
    }
