"""What triage takes and returns: plain frozen dataclasses the switchboard stores as it likes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from api.triage.emotion import EmotionVerdict
from api.triage.lexicon import LexiconResult
from api.triage.safety import SafetyResult
from api.triage.semantic import CALM, SemanticVerdict


class Priority(str, enum.Enum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Trigger(str, enum.Enum):
    """Why a thread went to a person (the architecture note's handoff triggers)."""

    SAFETY = "safety"
    OWNED_TOPIC = "owned_topic"  # refund dispute, VIP booking, press, artists, staff complaint
    NEEDS_PERSON = "needs_person"  # the semantic layer: grief, money gone wrong, an order, ...
    # The semantic layer leans urgent, under its threshold: a person checks, not as urgent.
    MAYBE_URGENT = "maybe_urgent"
    BOT_REQUEST = "bot_request"  # the bot's {"handoff_request": ...}
    EMOTION = "emotion"
    EXPLICIT = "explicit"  # the fan asked for a person
    SEVERAL_CASES = "several_cases"
    REPEATED = "repeated"
    FALLBACK = "fallback"  # repeated nlu_fallback / out_of_scope / low confidence


@dataclass(frozen=True)
class FanTurn:
    """One earlier fan message of this conversation (history is oldest first, most recent last).

    ``parse`` is the bot's NLU parse result for it when known (Rasa's dict, or any object with
    ``intent.name`` / ``intent.confidence``); ``negative`` is the stored ``Assessment.negative``
    so it is not scored again.
    """

    text: str
    parse: Any = None
    negative: float | None = None


@dataclass(frozen=True)
class Assessment:
    """Everything learnt from the fan's message before the bot sees it."""

    language: str
    safety: SafetyResult
    lexicon: LexiconResult
    negative: float  # the classifier's negative-emotion score, 0..1 (0 without a model)
    emotion: EmotionVerdict
    repeated: bool  # much like one of the fan's recent messages
    history_parses: tuple[Any, ...] = field(default_factory=tuple)
    semantic: SemanticVerdict | None = None  # what the message means; None: not read (yet)
    veto: float = 0.0  # the semantic layer overrules a pattern alarm below this probability

    @property
    def meaning(self) -> SemanticVerdict:
        return self.semantic or CALM

    @property
    def pattern_alarm(self) -> bool:
        """A safety pattern fired and the semantic layer, if it read the message, does not
        call it ordinary ("that drop nearly gave me a heart attack", "what happens if someone
        gets spiked?": idioms, questions, past events)."""
        if not self.safety.urgent:
            return False
        return self.semantic is None or self.semantic.urgent_p >= self.veto

    @property
    def overruled(self) -> bool:
        """A pattern fired, but the semantic layer read an idiom or a question."""
        return self.safety.urgent and not self.pattern_alarm

    @property
    def skip_bot(self) -> bool:
        """An emergency, by pattern or by meaning: do not wait for the bot, go straight to a
        person."""
        return self.pattern_alarm or self.meaning.urgent

    def with_meaning(self, semantic: SemanticVerdict | None) -> Assessment:
        """This assessment with the semantic layer's verdict (read while the bot answered, or
        to confirm a pattern alarm)."""
        return self if semantic is None else replace(self, semantic=semantic)


@dataclass(frozen=True)
class Decision:
    handoff: bool
    topic: str | None  # one of staff.yml's topics when handoff
    priority: Priority | None
    reasons: list[str]
    language: str
    triggers: tuple[Trigger, ...] = ()
    care: bool = False  # grief or personal distress: the fan is met with sympathy, not the bot

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for storing on the conversation."""
        return {
            "handoff": self.handoff, "topic": self.topic,
            "priority": self.priority.value if self.priority else None,
            "reasons": list(self.reasons), "language": self.language,
            "triggers": [t.value for t in self.triggers], "care": self.care,
        }


def intent_of(parse: Any) -> tuple[str | None, float | None]:
    """(intent name, confidence) from a Rasa parse dict or a ParseResult-like object."""
    if parse is None:
        return None, None
    intent = parse.get("intent") if isinstance(parse, Mapping) else getattr(parse, "intent", None)
    if intent is None:
        return None, None
    if isinstance(intent, Mapping):
        return intent.get("name"), intent.get("confidence")
    return getattr(intent, "name", None), getattr(intent, "confidence", None)
