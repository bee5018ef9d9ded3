"""The bot's training data as operators change it: reviewed examples and new intents, written
into the Rasa project in Rasa's own YAML formats.

Everything the console writes goes into files it owns, so hand-written data is never rewritten:

- ``data/nlu/reviewed.yml``: reviewed examples (each with who added it, when, from which item
  and in which language: ``metadata: {review_item, added_by, added_at, language}``);
- ``data/rules/reviewed.yml``: one rule per operator-created intent (``action_answer``);
- ``data/answers.reviewed.yml``: those intents' answer texts (read by the action server, which
  reloads it when it changes; ``{fact}`` placeholders come from the venue data);
- ``domain.yml``: the only shared file; new intent names are inserted at the end of its
  ``intents:`` list, and the result is checked to parse to the same domain plus those names.

Plain file IO on a project directory (tests use a temporary copy); the caller serialises
writers across the cluster (:func:`api.cluster.service.serialised`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REVIEWED_NLU = Path("data/nlu/reviewed.yml")
REVIEWED_RULES = Path("data/rules/reviewed.yml")
REVIEWED_ANSWERS = Path("data/answers.reviewed.yml")
DOMAIN = Path("domain.yml")
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{2,60}$")
# Rasa reads [text](entity) annotations inside examples: fans' brackets must not look like one.
_BRACKETS = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})
_HEADER = ("# Written by the operators' console (api/review): edit through it, or by hand with\n"
           "# care — it rewrites this file.\n")


class TrainingDataError(ValueError):
    """The change cannot be made (unknown intent, conflicting example, bad name...)."""


@dataclass(frozen=True)
class ExistingExample:
    intent: str
    file: str


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def example_text(text: str) -> str:
    """A fan's wording as a training example: one line, no entity-annotation syntax."""
    return " ".join(text.translate(_BRACKETS).split())


def intents(project: Path) -> list[str]:
    domain = _load(project / DOMAIN) or {}
    return [_name(entry) for entry in domain.get("intents") or []]


def examples(project: Path) -> dict[str, ExistingExample]:
    """Every NLU example in the project (normalised text -> intent and file)."""
    found: dict[str, ExistingExample] = {}
    for path in sorted((project / "data" / "nlu").rglob("*.yml")):
        for block in (_load(path) or {}).get("nlu") or []:
            if "intent" not in block:
                continue
            for text in _block_examples(block.get("examples")):
                found.setdefault(normalise(text), ExistingExample(
                    block["intent"], str(path.relative_to(project))))
    return found


def add_example(project: Path, *, intent: str, text: str, metadata: dict[str, Any]) -> list[str]:
    """Add ``text`` as an example of ``intent``; returns the files written ([] when the
    example is already there with that intent)."""
    text = example_text(text)
    if not check_example(project, intent=intent, text=text):
        return []
    data = _reviewed_nlu(project)
    block = next((b for b in data["nlu"] if b["intent"] == intent), None)
    if block is None:
        block = {"intent": intent, "examples": []}
        data["nlu"].append(block)
    block["examples"].append({"text": text, "metadata": dict(metadata)})
    _write(project / REVIEWED_NLU, data)
    return [str(REVIEWED_NLU)]


def check_example(project: Path, *, intent: str, text: str, replacing: str | None = None,
                  new_intent: bool = False) -> bool:
    """Refuse an example that cannot be added; False when it is already there as ``intent``.
    ``replacing``: the example this one replaces (it does not count as a conflict)."""
    if not example_text(text):
        raise TrainingDataError("the example is empty")
    if not new_intent and intent not in intents(project):
        raise TrainingDataError(f"unknown intent {intent!r}")
    key = normalise(example_text(text))
    existing = examples(project).get(key)
    if existing is None or (replacing is not None and normalise(replacing) == key
                            and existing.file == str(REVIEWED_NLU)):
        return True
    if existing.intent == intent:
        return False
    raise TrainingDataError(
        f"this example is already trained as {existing.intent!r} ({existing.file}); "
        "an example can belong to one intent only")


def remove_example(project: Path, *, text: str) -> list[str]:
    """Take a reviewed example out again (only reviewed.yml is ever edited)."""
    data = _reviewed_nlu(project)
    key = normalise(example_text(text))
    changed = False
    for block in data["nlu"]:
        kept = [e for e in block["examples"] if normalise(e["text"]) != key]
        changed |= len(kept) != len(block["examples"])
        block["examples"] = kept
    data["nlu"] = [b for b in data["nlu"] if b["examples"]]
    if not changed:
        return []
    _write(project / REVIEWED_NLU, data)
    return [str(REVIEWED_NLU)]


def add_intent(project: Path, *, name: str, answer_en: str, answer_es: str | None,
               fact_names: set[str]) -> list[str]:
    """A new intent answered by ``action_answer`` with the operator's text."""
    texts = check_new_intent(project, name=name, answer_en=answer_en, answer_es=answer_es,
                             fact_names=fact_names)
    _insert_domain_intent(project / DOMAIN, name)
    rules = _load(project / REVIEWED_RULES) or {"version": "3.1", "rules": []}
    rules["rules"].append({"rule": f"answer {name}",
                           "steps": [{"intent": name}, {"action": "action_answer"}]})
    _write(project / REVIEWED_RULES, rules)
    answers = _load(project / REVIEWED_ANSWERS) or {"answers": {}}
    answers["answers"][name] = texts
    _write(project / REVIEWED_ANSWERS, answers)
    return [str(DOMAIN), str(REVIEWED_RULES), str(REVIEWED_ANSWERS)]


def check_new_intent(project: Path, *, name: str, answer_en: str, answer_es: str | None,
                     fact_names: set[str]) -> dict[str, list[str]]:
    """Refuse a bad new intent (name, answer, placeholders); its answer texts otherwise."""
    if not INTENT_NAME.match(name):
        raise TrainingDataError(
            "intent names are 3-61 lowercase letters, digits and underscores, starting with "
            "a letter (e.g. lineup_compliment)")
    if name in intents(project) or name in {"nlu_fallback"}:
        raise TrainingDataError(f"intent {name!r} already exists")
    texts = {"en": [answer_en.strip()]}
    if answer_es and answer_es.strip():
        texts["es"] = [answer_es.strip()]
    if not texts["en"][0]:
        raise TrainingDataError("a new intent needs an English answer")
    unknown = sorted({field for variants in texts.values() for text in variants
                      for field in _placeholders(text)} - fact_names)
    if unknown:
        raise TrainingDataError(
            f"unknown fact placeholder(s): {', '.join('{' + u + '}' for u in unknown)}; "
            "use a fact from the venue data or write the value")
    return texts


# -- helpers -------------------------------------------------------------------------------------
def _name(entry: Any) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def _block_examples(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [line.strip()[2:].strip() for line in raw.splitlines()
                if line.strip().startswith("- ")]
    if isinstance(raw, list):
        return [str(e.get("text", "")).strip() if isinstance(e, dict) else str(e) for e in raw]
    return []


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"{([a-z_][a-z0-9_]*)}", text))


def _reviewed_nlu(project: Path) -> dict[str, Any]:
    data = _load(project / REVIEWED_NLU) or {}
    data.setdefault("version", "3.1")
    data["nlu"] = data.get("nlu") or []
    for block in data["nlu"]:
        block["examples"] = [e if isinstance(e, dict) else {"text": e}
                             for e in (block.get("examples") or [])]
    return data


def _load(path: Path) -> Any:
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(_HEADER + body, encoding="utf-8")
    tmp.replace(path)


def _insert_domain_intent(path: Path, name: str) -> None:
    """Insert ``- name`` at the end of the domain's ``intents:`` list, keeping every comment;
    refuse (and write nothing) unless the result parses to the same domain plus that intent."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "intents:")
    except StopIteration:
        raise TrainingDataError("domain.yml has no top-level `intents:` list") from None
    last_item, indent = start, "  "
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not lines[i].startswith((" ", "-")):
            break
        if stripped.startswith("- "):
            last_item, indent = i, lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    new_lines = [*lines[: last_item + 1], f"{indent}- {name}\n", *lines[last_item + 1:]]
    new_text = "".join(new_lines)
    before, after = yaml.safe_load(text), yaml.safe_load(new_text)
    expected = {**before, "intents": [*before["intents"], name]}
    if after != expected:
        raise TrainingDataError("domain.yml has a layout the console cannot edit safely")
    tmp = path.with_suffix(".yml.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
