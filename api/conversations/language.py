"""One language decision per fan text message, made by the switchboard when it stores it.

The detector is triage's lingua ``LanguageGuesser`` (the very instance triage uses, handed in by
the app factory), read through its public ``confidences`` and ``policy``: a message is
*confident* when triage would call it decisive on its own (``policy.min_words`` words, top
confidence ``policy.min_confidence``). The rules (docs/switchboard.md, "Language"):

- a thread's first message is decided on its own: confident -> that language;
- a weak guess ("ok", "thanks!", "hola", the widget's "/greet") keeps the thread's language;
  without one, the client's declared language (a hint), else the language the guess clearly
  leans to among those the bot answers in (``leaning``), else the default (English);
- a thread changes language only on a clear message: confident and at least
  ``switch_min_words`` words ("hay parking?" in a Spanish thread is not a switch);
- a declared language never overrides a confident detection.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

_CODE = re.compile(r"^([a-z]{2})(?:[-_][a-z0-9]{1,8})*$")


class Guesser(Protocol):
    """What is used of ``api.triage.language.LanguageGuesser``."""

    policy: Any  # min_words, min_confidence

    def confidences(self, text: str) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Detection:
    """What lingua makes of one message alone."""

    language: str | None = None
    confident: bool = False
    words: int = 0
    leaning: str | None = None  # a weak guess's clear lean to a language the bot answers in


# A weak first message ("a q hora abre la sala principal": es 0.36, ca 0.31) still leans: among
# the languages the bot answers in, with Catalan counted as Spanish (Ibiza's informal Spanish reads
# as Catalan to lingua, and a Catalan speaker reads Spanish), the leader by LEAN_MARGIN of the
# renormalised confidences is taken over English, when it is also lingua's first choice overall.
# On the held-out files, first messages decided Spanish rose from 215 to 267 of 283, German 73
# of 80, for 4 of 250 English messages now read as Spanish or German ("hiii 👋").
BOT_LANGUAGES = ("en", "es", "de")
LEAN_MARGIN = 0.2


def leaning(conf: Mapping[str, float]) -> str | None:
    share = {code: conf.get(code, 0.0) for code in BOT_LANGUAGES}
    share["es"] += conf.get("ca", 0.0)
    total = sum(share.values())
    if total <= 0:
        return None
    best = max(share, key=share.__getitem__)
    if best == "en" or (share[best] - share["en"]) / total < LEAN_MARGIN:
        return None
    # ... and it must be lingua's own first choice: "hello" reads as Italian first (0.36), so
    # its lean to Spanish among the bot's languages is noise.
    overall = {code: value for code, value in conf.items() if code != "ca"}
    overall["es"] = share["es"]
    return best if max(overall, key=overall.__getitem__) == best else None


NOTHING = Detection()


def declared(value: Any) -> str | None:
    """A client's declared language as an ISO 639-1 code: "es-ES", "es_419", "ES" -> "es"."""
    if not isinstance(value, str):
        return None
    match = _CODE.match(value.strip().lower())
    return match.group(1) if match else None


def is_payload(text: str) -> bool:
    """A button or widget payload ("/greet", "/affirm"): machine words, no language."""
    return text.lstrip().startswith("/")


class LanguageDecider:
    """Detects (lingua) and decides (the rules above). ``guesser`` returns the loaded guesser, or
    None while triage is still loading: then every message counts as a weak guess."""

    def __init__(self, guesser: Callable[[], Guesser | None], *, default: str = "en",
                 switch_min_words: int = 3) -> None:
        self._guesser = guesser
        self.default = default
        self.switch_min_words = switch_min_words
        self._warned = False

    def detect(self, text: str | None) -> Detection:
        if not text or is_payload(text):
            return NOTHING
        guesser = self._guesser()
        if guesser is None:
            if not self._warned:
                self._warned = True
                log.warning("language: no detector (triage not loaded): messages count as weak "
                            "guesses until it is")
            return NOTHING
        conf = guesser.confidences(text)
        if not conf:
            return NOTHING
        best = max(conf, key=conf.__getitem__)
        words = sum(1 for w in text.split() if any(ch.isalpha() for ch in w))
        policy = guesser.policy
        confident = words >= policy.min_words and conf[best] >= policy.min_confidence
        return Detection(best, confident, words, None if confident else leaning(conf))

    def decide(self, detection: Detection, *, current: str | None, hint: str | None,
               first: bool) -> str:
        """The message's language. ``current``: the thread's language; ``first``: no earlier
        fan message of the thread was decided; ``hint``: the client's declared language."""
        if detection.language and detection.confident and (
                first or detection.words >= self.switch_min_words):
            return detection.language
        if first:
            return hint or detection.leaning or current or self.default
        return current or hint or self.default
