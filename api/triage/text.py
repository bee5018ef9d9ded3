"""Casual-spelling normalisation shared by the safety patterns and the lexicon.

Fans write "cant find my m8", "pleeease", "im", "q" and "xq". Patterns are written once in
clean spelling; this maps the common shortcuts onto it and keeps an offset map so a reason can
quote the fan's own words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Whole-word shortcuts -> clean spelling (both languages; collisions checked by tests).
SHORTCUTS: dict[str, str] = {
    # English
    "im": "i'm", "ive": "i've", "u": "you", "ur": "your", "r": "are",
    "m8": "mate", "m8s": "mates", "bf": "boyfriend", "gf": "girlfriend", "sis": "sister",
    "pls": "please", "plz": "please", "plss": "please", "ppl": "people", "sum1": "someone",
    "some1": "someone", "smth": "something", "sth": "something", "sumthing": "something",
    "wanna": "want to", "gonna": "going to", "gotta": "got to", "hes": "he's", "shes": "she's",
    "theyre": "they're", "thats": "that's", "whats": "what's", "cnt": "can't", "cant": "can't",
    "dont": "don't", "dnt": "don't", "doesnt": "doesn't", "didnt": "didn't", "isnt": "isn't",
    "wasnt": "wasn't", "wont": "won't", "havent": "haven't", "couldnt": "couldn't",
    "cannot": "can not", "aint": "isn't", "n": "and", "2day": "today", "2nite": "tonight",
    "tonite": "tonight", "b4": "before", "bc": "because", "cuz": "because", "coz": "because",
    "thru": "through", "w/": "with", "hv": "have", "rn": "right now", "asap": "as soon as possible",
    "od": "overdose", "odd'd": "overdosed", "od'd": "overdosed", "oded": "overdosed",
    # Spanish
    "q": "que", "xq": "porque", "pq": "porque", "porq": "porque", "tb": "también",
    "tmb": "también", "xfa": "por favor", "porfa": "por favor", "pf": "por favor", "toy": "estoy",
    "ta": "está", "nd": "nada", "mxo": "mucho", "muxo": "mucho", "d": "de",
}
_WORD = re.compile(r"[\w'’]+|\S", re.UNICODE)
_REPEATS = re.compile(r"(\w)\1{2,}", re.UNICODE)


@dataclass(frozen=True)
class Normalised:
    """Clean text plus, for each clean word, the (start, end) offsets in the original."""

    text: str
    spans: tuple[tuple[int, int, int, int], ...]  # clean_start, clean_end, orig_start, orig_end

    def original(self, raw: str, start: int, end: int) -> str:
        """The fan's own words behind the clean characters start..end."""
        covered = [s for s in self.spans if s[1] > start and s[0] < end]
        if not covered:
            return self.text[start:end]
        return raw[covered[0][2]:covered[-1][3]]


def strip_accents(text: str) -> str:
    """'están' -> 'estan' (fans often skip accents; patterns are written without them)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def normalise(raw: str) -> Normalised:
    """Lowercase, straighten quotes, squeeze 'pleeease', expand shortcuts; keep offsets."""
    out: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    pos = 0
    for m in _WORD.finditer(raw):
        word = m.group().lower().replace("’", "'")
        word = _REPEATS.sub(r"\1", word)
        word = SHORTCUTS.get(word, word)
        if out:
            pos += 1
        spans.append((pos, pos + len(word), m.start(), m.end()))
        out.append(word)
        pos += len(word)
    return Normalised(text=" ".join(out), spans=tuple(spans))
