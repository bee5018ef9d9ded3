"""A long message is read by the semantic layer in overlapping windows.

One sentence embedding of 900 words dilutes an emergency at its end below anything the layer (or
its veto over the safety patterns) acts on; a window around it reads like the emergency it is.
The message's verdict is its most alarming window's. Short messages, nearly all of them, are
read whole, as before.
"""

from __future__ import annotations

from typing import Protocol

from api.triage.semantic import SemanticVerdict

WHOLE_CHARS = 400  # read whole up to here: about the longest fan messages in the training data
# A sentence of an emergency (60-80 characters) still dominates a window this size: 900 words of
# filler and one emergency gave 0.94 in windows of 200, 0.91 of 250, 0.65 of 400.
WINDOW_CHARS = 200
MAX_WINDOWS = 48  # about 5,000 characters; beyond, the start and the end are read


class Reads(Protocol):
    def classify(self, text: str) -> SemanticVerdict: ...
    def classify_many(self, texts: list[str]) -> list[SemanticVerdict]: ...


def windows(text: str) -> list[str]:
    """The text itself up to WHOLE_CHARS; else windows of whole words of at most WINDOW_CHARS
    (a longer word alone), each starting half-way through the one before, the last at the end."""
    if len(text) <= WHOLE_CHARS:
        return [text]
    words = text.split()
    spans: list[str] = []
    start = 0
    while True:
        end, size = start, 0
        while end < len(words) and (end == start or size + len(words[end]) + 1 <= WINDOW_CHARS):
            size += len(words[end]) + 1
            end += 1
        spans.append(" ".join(words[start:end]))
        if end >= len(words):
            break
        start = max(start + 1, (start + end) // 2)
    if len(spans) > MAX_WINDOWS:
        spans = spans[:MAX_WINDOWS // 2] + spans[-(MAX_WINDOWS // 2):]
    return spans


def read(model: Reads, text: str) -> SemanticVerdict:
    """The semantic verdict on a whole message, however long."""
    parts = windows(text)
    if len(parts) == 1:
        return model.classify(text)
    return max(model.classify_many(parts), key=lambda v: (v.urgent_p, v.person_p))
