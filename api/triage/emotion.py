"""Negative emotion: the trained spaCy text classifier, and the thread's trajectory.

One grumpy message does not page a human; a second negative message in a row (rising or
sustained anger), or a first one that is very strong and carries a grievance or distress, does.
Grievances the bot must not own (staff, money, refused entry) hand off through the lexicon
whatever the score.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy
from spacy.language import Language
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from api.triage.stacker import Stacker, features

LABEL = "negative"
META_FILE = "triage_meta.json"


@dataclass(frozen=True)
class ModelMeta:
    threshold: float  # decision threshold (chosen on GoEmotions dev when present)
    data: tuple[str, ...]  # which data trained it
    stamp: str  # hash of training data + code + config
    stacker: Stacker | None = None  # textcat + VADER combination, when trained with GoEmotions


class EmotionModel:
    """The textcat pipeline in ``models/triage/`` with its threshold (and VADER stacker)."""

    def __init__(self, nlp: Language, meta: ModelMeta) -> None:
        self.nlp = nlp
        self.meta = meta
        self.vader = SentimentIntensityAnalyzer() if meta.stacker else None

    @classmethod
    def load(cls, model_dir: Path) -> EmotionModel:
        meta_path = model_dir / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no triage model in {model_dir}; run `make train-triage`")
        raw = json.loads(meta_path.read_text())
        st = raw.get("stacker")
        stacker = Stacker(tuple(st["weights"]), float(st["bias"])) if st else None
        meta = ModelMeta(float(raw["threshold"]), tuple(raw["data"]), str(raw["stamp"]), stacker)
        return cls(spacy.load(model_dir), meta)

    def score(self, text: str) -> float:
        return self._combine(text, float(self.nlp(text).cats.get(LABEL, 0.0)))

    def scores(self, texts: Sequence[str], batch_size: int = 256) -> list[float]:
        docs = self.nlp.pipe(texts, batch_size=batch_size)
        pairs = zip(texts, docs, strict=True)
        return [self._combine(t, float(d.cats.get(LABEL, 0.0))) for t, d in pairs]

    def _combine(self, text: str, p: float) -> float:
        if self.meta.stacker is None or self.vader is None:
            return p
        return self.meta.stacker.score(features(p, self.vader.polarity_scores(text)))


class Level(enum.Enum):
    CALM = "calm"
    GRUMPY = "grumpy"  # negative, but one message: the bot carries on
    RISING = "rising"  # negative again within the window: a person
    STRONG = "strong"  # first message, very negative with a grievance or distress: a person


@dataclass(frozen=True)
class TrajectoryPolicy:
    window: int = 2  # previous fan messages that count towards "again"
    strong_margin: float = 0.25  # strong = threshold + margin (capped at 0.95)
    carry: float = 0.8  # a previous message counts if its score >= carry * threshold


@dataclass(frozen=True)
class EmotionVerdict:
    score: float
    level: Level
    reason: str | None

    @property
    def handoff(self) -> bool:
        return self.level in (Level.RISING, Level.STRONG)


_SHOUT = re.compile(r"\b[A-Z]{3,}\b")
DISTRESS_WORDS = frozenset({
    "crying", "tears", "sobbing", "shaking", "devastated", "heartbroken", "traumatised",
    "traumatized", "trauma", "hopeless", "llorando", "lagrimas", "destrozada", "destrozado",
    "temblando", "hundida", "hundido", "desesperada", "desesperado",
})


def intensity(text: str) -> bool:
    """Shouting or piled-up punctuation: a sign the feeling is strong, not just the words."""
    return bool(_SHOUT.search(text)) or "!!" in text or "?!" in text


def trajectory(score: float, previous: Sequence[float], threshold: float, *, grievance: bool,
               distress: bool, intense: bool, policy: TrajectoryPolicy = TrajectoryPolicy()
               ) -> EmotionVerdict:
    """Combine this message's negative score with the last few fan messages' scores."""
    if score < threshold:
        return EmotionVerdict(score, Level.CALM, None)
    strong = min(0.95, threshold + policy.strong_margin)
    if score >= strong and (grievance or distress or intense):
        what = "distress" if distress else "grievance" if grievance else "strong feeling"
        return EmotionVerdict(score, Level.STRONG,
                              f"emotion: strongly negative first message ({what}, {score:.2f})")
    recent = [s for s in previous[-policy.window:] if s >= policy.carry * threshold]
    if recent:
        trend = "rising" if score >= max(recent) else "sustained"
        return EmotionVerdict(score, Level.RISING,
                              f"emotion: {trend} negative ({', '.join(f'{s:.2f}' for s in recent)}"
                              f" -> {score:.2f})")
    if grievance and score >= (threshold + strong) / 2:
        return EmotionVerdict(score, Level.STRONG,
                              f"emotion: negative message with a grievance ({score:.2f})")
    return EmotionVerdict(score, Level.GRUMPY, None)


def has_distress(words: Sequence[str]) -> bool:
    return any(w in DISTRESS_WORDS for w in words)
