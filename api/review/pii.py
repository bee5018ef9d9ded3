"""Personal data in a fan's wording, found before it can become a training example.

Pure and deliberately eager: a false alarm costs the operator one click ("not personal"), a miss
puts a fan's email into the bot's training data (and into git) for good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    kind: str  # email | phone | order_number | card_number | name | handle | url
    start: int
    end: int
    text: str

    @property
    def placeholder(self) -> str:
        return f"<{self.kind.replace('_', ' ')}>"


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("url", re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)),
    ("card_number", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("phone", re.compile(r"(?<![\w])\+?\d[\d ().-]{6,}\d\b")),
    # Order / booking / ticket references: letters+digits codes, or a number after the word.
    ("order_number", re.compile(
        r"\b(?:order|booking|ticket|ref(?:erence)?|confirmation|pedido|reserva)"
        r"(?:\s*(?:no\.?|number|num|nr|#|n[ºo°]))?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{3,})\b",
        re.IGNORECASE)),
    ("order_number", re.compile(
        r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]{2,}-?[A-Z0-9]{3,}\b")),
    ("handle", re.compile(r"(?<![\w@])@[A-Za-z0-9_.]{2,}")),
    # "my name is Ana", "I'm Ana Lopez", "me llamo Ana", "this is Tom from ..."
    ("name", re.compile(
        r"\b(?i:my name is|my name's|i am|i'm|im|this is|me llamo|soy|my (?:friend|mate|"
        r"sister|brother|girlfriend|boyfriend|wife|husband|partner)(?: is called| is| called)?)\s+"
        r"([A-Z][a-zà-ÿ'-]+(?:\s+[A-Z][a-zà-ÿ'-]+)?)")),
)


def find(text: str, known_names: tuple[str, ...] = ()) -> list[Finding]:
    """Every piece of personal data in ``text`` (non-overlapping, in order). ``known_names``:
    names the desk already knows for this fan (their display name), matched as whole words."""
    found: list[Finding] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            start, end = match.span(group)
            found.append(Finding(kind, start, end, text[start:end]))
    for name in known_names:
        for part in {p for p in name.split() if len(p) >= 3}:
            for match in re.finditer(rf"\b{re.escape(part)}\b", text, re.IGNORECASE):
                found.append(Finding("name", match.start(), match.end(), match.group(0)))
    return _without_overlaps(found)


def redact(text: str, known_names: tuple[str, ...] = ()) -> str:
    """``text`` with each finding replaced by its placeholder (``<email>``, ``<name>``...)."""
    out, last = [], 0
    for f in find(text, known_names):
        out += [text[last:f.start], f.placeholder]
        last = f.end
    out.append(text[last:])
    return "".join(out)


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
        if kept and f.start < kept[-1].end:
            continue
        kept.append(f)
    return kept
