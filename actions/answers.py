"""The bot's answer texts (data/answers.yml), filled with facts, in the fan's language."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_LANGUAGES = ("en", "es")

# Words that only a Spanish-writing fan uses. The switchboard sends a detected language in the
# message metadata; this is the fallback for clients that talk to Rasa directly.
_SPANISH_MARKERS = re.compile(
    r"[¿¡ñ]|\b(hola|buenas|buenos|cuánto|cuanto|cuesta|cuestan|valen|vale|entrada|entradas|"
    r"abrís|abris|abren|abrimos|cierran|cerráis|horario|horarios|hora|quiero|hablar|persona|"
    r"gracias|qué|que|cuándo|cuando|dónde|donde|noche|hoy|mañana|precio|precios|taquilla|"
    r"puedo|necesito|humano|agente|alguien|adiós|adios|por favor|sois|estáis|estais|"
    r"viernes|sábado|sabado|domingo|lunes|miércoles|miercoles|jueves|martes)\b",
    re.IGNORECASE,
)


def detect_language(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The language to answer in: the switchboard's choice if given, else a word-list guess."""
    declared = (metadata or {}).get("language")
    if declared in SUPPORTED_LANGUAGES:
        return declared
    if len(_SPANISH_MARKERS.findall(text or "")) >= 1 and not re.search(
        r"\b(the|what|how|is|are|you|do|my|i)\b", text or "", re.IGNORECASE
    ):
        return "es"
    return "en"


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
            for language in SUPPORTED_LANGUAGES:
                for template in entry.get(language) or ():
                    names.update(
                        field for _, field, _, _ in string.Formatter().parse(template) if field
                    )
            found[key] = names
        return found


class _Strict(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"answer template needs a value for {{{key}}}")
