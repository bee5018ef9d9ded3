"""Reading GoEmotions-format TSVs (``text<TAB>label_ids<TAB>comment_id``) as binary "negative"."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

# The release's label order, used when no labels.txt sits next to the TSV.
KNOWN_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
# The paper's "negative" sentiment group.
NEGATIVE_GROUP: frozenset[str] = frozenset({
    "anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment", "fear",
    "grief", "nervousness", "remorse", "sadness",
})


@dataclass(frozen=True)
class Example:
    text: str
    negative: bool


def label_names(tsv: Path) -> tuple[str, ...]:
    """labels.txt next to the TSV when present, else the release's order."""
    labels = tsv.parent / "labels.txt"
    if labels.is_file():
        names = tuple(line.strip() for line in labels.read_text().splitlines() if line.strip())
        if names:
            return names
    return KNOWN_LABELS


def read_tsv(tsv: Path) -> list[Example]:
    """Rows of a GoEmotions TSV as (text, is any label in the negative group)."""
    names = label_names(tsv)
    negative_ids = {i for i, name in enumerate(names) if name in NEGATIVE_GROUP}
    rows: list[Example] = []
    with tsv.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 2 or not row[0].strip():
                continue
            ids = {int(x) for x in row[1].split(",") if x.strip().isdigit()}
            rows.append(Example(text=row[0], negative=bool(ids & negative_ids)))
    return rows
