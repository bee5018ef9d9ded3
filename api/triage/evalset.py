"""The labelled handoff set (data/triage/handoff_eval.toml) and how triage does on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from api.triage.schemas import Decision, FanTurn

REPO_ROOT = Path(__file__).resolve().parents[2]
EVAL_SET = REPO_ROOT / "data" / "triage" / "handoff_eval.toml"


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    handoff: bool
    topic: str | None
    tags: tuple[str, ...] = ()
    turns: tuple[FanTurn, ...] = ()
    parse: dict[str, Any] | None = None
    bot_items: tuple[dict[str, Any], ...] = ()


@dataclass
class Outcome:
    total: int = 0
    handoff_right: int = 0
    topic_right: int = 0  # handoff right and, when handed off, the topic too
    safety_total: int = 0
    safety_hit: int = 0  # safety-tagged messages the safety patterns caught
    must_not_total: int = 0
    false_handoffs: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.handoff_right / self.total if self.total else 0.0

    @property
    def topic_accuracy(self) -> float:
        return self.topic_right / self.total if self.total else 0.0

    @property
    def safety_recall(self) -> float:
        return self.safety_hit / self.safety_total if self.safety_total else 0.0


def _parse(intent: str | None, confidence: float | None) -> dict[str, Any] | None:
    return None if intent is None else {"intent": {"name": intent, "confidence": confidence}}


def load_cases(path: Path = EVAL_SET) -> list[Case]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    cases: list[Case] = []
    for c in raw["cases"]:
        turns = tuple(FanTurn(t["text"], _parse(t.get("intent"), t.get("confidence")))
                      for t in c.get("turns") or ())
        bot = ({"custom": {"handoff_request": c["bot"]}},) if c.get("bot") else ()
        cases.append(Case(str(c["id"]), c["text"], bool(c["handoff"]), c.get("topic"),
                          tuple(c.get("tags") or ()), turns,
                          _parse(c.get("intent"), c.get("confidence")), bot))
    return cases


def score(cases: Sequence[Case], decide: Any, safety_topic: Any) -> Outcome:
    """``decide(case) -> Decision``; ``safety_topic(text) -> str | None`` (patterns alone)."""
    out = Outcome()
    for case in cases:
        decision: Decision = decide(case)
        out.total += 1
        right = decision.handoff == case.handoff
        out.handoff_right += right
        topic_ok = right and (not case.handoff or decision.topic == case.topic)
        out.topic_right += topic_ok
        if not topic_ok:
            out.wrong.append(f"{case.id}: expected {case.handoff}/{case.topic}, "
                             f"got {decision.handoff}/{decision.topic} {decision.reasons}")
        if "safety" in case.tags:
            out.safety_total += 1
            out.safety_hit += safety_topic(case.text) is not None
        if "must_not" in case.tags:
            out.must_not_total += 1
            if decision.handoff:
                out.false_handoffs.append(case.id)
    return out
