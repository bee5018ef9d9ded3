"""The bot's answer texts (data/answers.yml), filled with facts, in the fan's language."""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_LANGUAGE = "en"  # every key has an English text; the fallback for every other language
# Said once before an English answer when the fan's language has no text for it yet.
NOT_IN_YOUR_LANGUAGE = "not_in_your_language"


def answer_language(metadata: Mapping[str, Any] | None, slots: Mapping[str, Any] | None,
                    supported: frozenset[str]) -> str:
    """The language to answer in. The switchboard decides each fan message's language and sends
    it as ``metadata.language``; it is used when data/answers.yml has texts in it (else English).
    Without it (``rasa shell``, conversation tests, Rasa's own REST channel) a ``language`` slot
    is used when the domain has one, else English. The bot never guesses from the words."""
    declared = (metadata or {}).get("language")
    if declared is None:
        declared = (slots or {}).get("language")
    code = declared.strip().lower()[:2] if isinstance(declared, str) else ""
    return code if code in supported else DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Answers:
    """Answer templates by key and language; English is the fallback for every key."""

    templates: Mapping[str, Mapping[str, Any]]

    @classmethod
    def load(cls, path: str | Path) -> Answers:
        with open(path, encoding="utf-8") as handle:
            return cls(yaml.safe_load(handle)["answers"])

    @classmethod
    def load_with_reviewed(cls, path: str | Path, reviewed: str | Path) -> Answers:
        """The hand-written answers plus those of intents operators created (their file is
        optional; a hand-written key always wins)."""
        answers = cls.load(path)
        if not Path(reviewed).exists():
            return answers
        with open(reviewed, encoding="utf-8") as handle:
            extra = (yaml.safe_load(handle) or {}).get("answers") or {}
        return cls({**extra, **answers.templates})

    def __contains__(self, key: str) -> bool:
        return key in self.templates

    @property
    def languages(self) -> frozenset[str]:
        """The languages the answers are written in (``en``, ``es``, ...): every language with a
        text in data/answers.yml (the supported languages follow the file)."""
        return frozenset(code for entry in self.templates.values() for code, texts in entry.items()
                         if _is_language(code) and texts)

    def has_text(self, key: str, language: str) -> bool:
        return bool(self.templates.get(key, {}).get(language))

    def has_season_note(self, key: str) -> bool:
        return bool(self.templates.get(key, {}).get("season_note"))

    def language_for(self, key: str, language: str) -> str:
        """``language`` when ``key`` has a text in it, else English."""
        return language if self.templates[key].get(language) else "en"

    def variants(self, key: str, language: str) -> list[str]:
        entry = self.templates[key]
        return list(entry[self.language_for(key, language)])

    def render(self, key: str, language: str, values: Mapping[str, Any],
               rng: random.Random | None = None) -> str:
        """Fill one variant of ``key``; a missing placeholder is an error, never a blank."""
        template = (rng or random).choice(self.variants(key, language))
        return template.format_map(_Strict(values))

    def placeholders(self) -> dict[str, set[str]]:
        """Every placeholder each key uses (for the data tests)."""
        found: dict[str, set[str]] = {}
        for key, entry in self.templates.items():
            names: set[str] = set()
            for language in self.languages:
                for template in entry.get(language) or ():
                    names.update(
                        field for _, field, _, _ in string.Formatter().parse(template) if field
                    )
            found[key] = names
        return found


def _is_language(code: Any) -> bool:
    """An ISO 639-1 key of an answer entry (not a flag such as ``season_note``)."""
    return isinstance(code, str) and len(code) == 2 and code.isalpha() and code.islower()


class _Strict(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"answer template needs a value for {{{key}}}")
