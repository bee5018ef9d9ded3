"""The fan's language (lingua, restricted to the languages the team writes), to prefer staff
who write it. Short messages ("ok", "hola") are ambiguous, so the thread's recent messages are
used when the message alone is not convincing, and the desk's main languages win ties."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

SUPPORTED: dict[str, Language] = {
    "en": Language.ENGLISH, "es": Language.SPANISH, "de": Language.GERMAN,
    "nl": Language.DUTCH, "fr": Language.FRENCH, "it": Language.ITALIAN, "ca": Language.CATALAN,
}
PRIMARY: tuple[str, ...] = ("en", "es")  # most fans; preferred when a guess is weak


@dataclass(frozen=True)
class LanguagePolicy:
    default: str = "en"
    min_confidence: float = 0.45  # below this the message alone does not decide
    min_words: int = 2
    # lingua's low-accuracy mode (trigrams only) takes ~15 MB instead of ~220 MB for seven
    # languages, but got 8 of our 170 labelled messages wrong ("i want to die" -> es), so off.
    low_accuracy: bool = False


class LanguageGuesser:
    """Built once at startup (loads lingua's models for the supported languages)."""

    def __init__(self, codes: Sequence[str] = tuple(SUPPORTED),
                 policy: LanguagePolicy | None = None, preload: bool = True) -> None:
        self.codes = tuple(c for c in codes if c in SUPPORTED)
        self.policy = policy or LanguagePolicy()
        builder = LanguageDetectorBuilder.from_languages(*(SUPPORTED[c] for c in self.codes))
        if preload:
            builder = builder.with_preloaded_language_models()
        if self.policy.low_accuracy:
            builder = builder.with_low_accuracy_mode()
        self.detector: LanguageDetector = builder.build()

    def confidences(self, text: str) -> dict[str, float]:
        values = self.detector.compute_language_confidence_values(text)
        return {v.language.iso_code_639_1.name.lower(): v.value for v in values}

    def guess(self, text: str, previous: Sequence[str] = ()) -> str:
        """ISO 639-1 code of the fan's language."""
        own = self.confidences(text)
        if _decisive(own, text, self.policy):
            return max(own, key=own.__getitem__)
        context = " ".join([*previous[-3:], text])
        both = self.confidences(context) if previous else own
        if _decisive(both, context, self.policy):
            return max(both, key=both.__getitem__)
        primary = {c: both.get(c, 0.0) for c in PRIMARY if c in self.codes}
        if primary and max(primary.values()) > 0:
            return max(primary, key=primary.__getitem__)
        return self.policy.default


def _decisive(conf: dict[str, float], text: str, policy: LanguagePolicy) -> bool:
    words = sum(1 for w in text.split() if any(ch.isalpha() for ch in w))
    return bool(conf) and words >= policy.min_words and max(conf.values()) >= policy.min_confidence
