"""A small notation for spaCy Matcher patterns, shared by the safety patterns and the lexicon.

Patterns run on a normalised copy of the text (``text.normalise``: "cant find my m8" -> "can't
find my mate") through a blank spaCy pipeline per language with the lookup lemmatizer from
spacy-lookups-data, so one pattern covers "followed", "following", "follows".

One string per pattern, tokens separated by spaces:
  word        the token's NORM (lowercase; Spanish without accents); words of 5+ letters also
              match with one typo, 8+ letters with two ("freind", "colapsed")
  =word       exact NORM, no typo allowance (short or ambiguous words)
  ~lemma      the token's lemma ("~follow" = follow/followed/following)
  a|=b|~c     any of these (NORMs exactly, ~ for lemmas)
  $CLASS      a word class of the rule set ($PERSON = friend/mate/sister/...)
  word?       the token is optional;  *  up to two tokens of anything in between
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from api.triage.text import Normalised, strip_accents


class Kind(enum.Enum):
    TRIGGER = "trigger"  # enough on its own
    SUPPORT = "support"  # only adds to the reason when a trigger fired ("+ 'not answering'")


@dataclass(frozen=True)
class Rule:
    name: str
    topic: str  # one of staff.yml's topics: safety, medical, harassment, lost_person
    lang: str  # "en" | "es"
    patterns: tuple[str, ...]
    kind: Kind = Kind.TRIGGER
    unless_next: tuple[str, ...] = ()  # a match followed by one of these words does not count


def _token_specs(word: str, classes: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One notation token -> its alternative Matcher token patterns (usually one)."""
    optional = word.endswith("?") and len(word) > 1
    if optional:
        word = word[:-1]
    if word == "*":
        return [{"OP": "{0,2}"}]
    specs: list[dict[str, Any]]
    if word.startswith("$"):
        specs = [dict(classes[word[1:]])]
    elif "|" in word:
        specs = _alternatives(word.split("|"))
    elif word.startswith("~"):
        specs = [{"LEMMA": {"IN": [word[1:]]}}]
    elif word.startswith("="):
        specs = [{"NORM": word[1:]}]
    else:
        specs = [_fuzzy(word)]
    if optional:
        specs = [{**spec, "OP": "?"} for spec in specs]
    return specs


def _fuzzy(word: str) -> dict[str, Any]:
    """Exact for short words; one typo from 5 letters, two from 8."""
    if len(word) >= 8:
        return {"NORM": {"FUZZY2": word}}
    if len(word) >= 5:
        return {"NORM": {"FUZZY1": word}}
    return {"NORM": word}


def _alternatives(words: Sequence[str]) -> list[dict[str, Any]]:
    """'~a|b|=c' -> a LEMMA IN spec and a NORM IN spec (one predicate per attribute)."""
    lemmas = [w[1:] for w in words if w.startswith("~")]
    norms = [w.lstrip("=") for w in words if not w.startswith("~")]
    specs: list[dict[str, Any]] = []
    if lemmas:
        specs.append({"LEMMA": {"IN": lemmas}})
    if norms:
        specs.append({"NORM": {"IN": norms}})
    return specs


def compile_rule(rule: Rule, classes: Mapping[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """All patterns of a rule as Matcher patterns (a token with lemma and norm alternatives
    expands into one pattern per alternative)."""
    compiled: list[list[dict[str, Any]]] = []
    for pattern in rule.patterns:
        for combo in itertools.product(*(_token_specs(w, classes) for w in pattern.split())):
            compiled.append(list(combo))
    return compiled


Found = tuple[int, int, Rule]  # start and end characters in the normalised text, the rule


def make_docs(pipelines: Mapping[str, Language], norm: Normalised) -> dict[str, Doc]:
    """The normalised text through each language's pipeline (Spanish norms without accents)."""
    out: dict[str, Doc] = {}
    for lang, nlp in pipelines.items():
        doc = nlp(norm.text)
        if lang == "es":
            for token in doc:
                token.norm_ = strip_accents(token.lower_)
        out[lang] = doc
    return out


class PatternMatcher:
    """Rules compiled into one spaCy Matcher per language; built once at startup."""

    def __init__(self, pipelines: Mapping[str, Language], rules: Iterable[Rule],
                 classes: Mapping[str, dict[str, Any]]) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.matchers: dict[str, Matcher] = {}
        for lang, nlp in pipelines.items():
            matcher = Matcher(nlp.vocab, validate=True)
            for rule in self.rules.values():
                if rule.lang == lang:
                    matcher.add(rule.name, compile_rule(rule, classes))
            self.matchers[lang] = matcher

    def _undone(self, span: Span) -> bool:
        return _next_norm(span) in self.rules[span.label_].unless_next

    def find(self, docs: Mapping[str, Doc]) -> list[Found]:
        """Every rule match (longest per rule), in text order."""
        found: list[Found] = []
        for lang, doc in docs.items():
            matcher = self.matchers.get(lang)
            if matcher is None:
                continue
            spans = [span for span in matcher(doc, as_spans=True)
                     if not _possessive_object(span) and not self._undone(span)]
            found += [(s.start_char, s.end_char, self.rules[s.label_]) for s in _longest(spans)]
        return sorted(found, key=lambda f: (f[0], -f[1]))


def _next_norm(span: Span) -> str | None:
    return span.doc[span.end].norm_ if span.end < len(span.doc) else None


def merge(found: Sequence[tuple[int, int, Rule]]) -> list[tuple[int, int, list[Rule]]]:
    """Overlapping character ranges merged, in text order, with the rules behind each."""
    merged: list[tuple[int, int, list[Rule]]] = []
    for start, end, rule in sorted(found, key=lambda f: (f[0], -f[1])):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2] + [rule])
        else:
            merged.append((start, end, [rule]))
    return merged


def _longest(spans: list[Span]) -> list[Span]:
    """Per rule, drop matches inside a longer match of the same rule."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.end - s.start), reverse=True):
        if any(k.label == span.label and k.start <= span.start and span.end <= k.end for k in kept):
            continue
        kept.append(span)
    return kept


# "can't find my friend's jacket" / "my friends phone" are lost property, not a lost person.
OBJECTS = frozenset({
    "jacket", "coat", "phone", "bag", "wallet", "keys", "ticket", "tickets", "id", "card",
    "passport", "glasses", "purse", "hat", "jumper", "hoodie", "charger", "earrings", "ring",
    "movil", "cartera", "bolso", "llaves", "chaqueta", "abrigo", "entrada", "tarjeta", "dni",
})


def _possessive_object(span: Span) -> bool:
    """The match ends on a person who owns the thing that is actually lost, or the rule says
    the next word undoes it ("kicked me out" is an ejection, not an assault)."""
    doc = span.doc
    if span.end >= len(doc):
        return False
    following = doc[span.end].norm_
    if following in {"'s", "s"} and span.end + 1 < len(doc):
        return True
    return following in OBJECTS
