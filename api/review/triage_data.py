"""Triage's training data as operators grow it from staff's flags: ``data/triage/semantic/
reviewed.tsv`` (``label<TAB>lang<TAB>text``, the format ``api.triage.semantic_train.read_tsv``
reads; ``make train-triage`` picks it up with the other ``*.tsv`` files there).

The console owns that one file: other TSV files in the folder are read (an example can have one
label only) but never written. Plain file IO on a project directory (tests use a temporary
copy); the caller serialises writers with :func:`api.cluster.service.serialised`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.inbox.schemas import label_name
from api.review.training_data import TrainingDataError, normalise
from api.triage.semantic import LABELS

SEMANTIC_DIR = Path("data/triage/semantic")
REVIEWED_TSV = SEMANTIC_DIR / "reviewed.tsv"
# A review item annotated for triage keeps its label as ``intent`` with this prefix (an intent
# name never has a colon), so it is never taken for one of the bot's intents.
PREFIX = "triage:"
HEADER = (
    "# Staff-reviewed triage examples: fan messages staff marked in the inbox (\"this should "
    "have come to a person\" / \"this did not need a person\"), label confirmed and text "
    "redacted by an operator; labels: " + ", ".join(LABELS) + ".\n"
    "# Written by the operators' console (api/review/triage_data.py, \"Add to triage data\"): "
    "add through it; reopening the item in the console takes its line out again.\n"
    "# Format: label<TAB>lang<TAB>text, one example per line, UTF-8; lines starting with # are "
    "comments.\n"
)


@dataclass(frozen=True)
class ExistingExample:
    label: str
    file: str


def example_text(text: str) -> str:
    """One line, single spaces: no tab or newline can break the TSV."""
    return " ".join(text.split())


def intent_for(label: str) -> str:
    return PREFIX + label


def label_of(intent: str | None) -> str | None:
    """The triage label of a review item's ``intent``; None for one of the bot's intents."""
    if intent and intent.startswith(PREFIX):
        return intent[len(PREFIX):]
    return None


def examples(project: Path) -> dict[str, ExistingExample]:
    """Every example of the semantic layer's TSV files (normalised text -> label and file);
    lines that are not ``label<TAB>lang<TAB>text`` are skipped (the trainer reports them)."""
    found: dict[str, ExistingExample] = {}
    for path in sorted((project / SEMANTIC_DIR).glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if line.startswith("#") or len(parts) != 3 or not parts[2].strip():
                continue
            found.setdefault(normalise(parts[2]), ExistingExample(
                parts[0], str(path.relative_to(project))))
    return found


def check_example(project: Path, *, label: str, text: str, replacing: str | None = None) -> bool:
    """Refuse an example that cannot be added; False when it is already there as ``label``.
    ``replacing``: this item's earlier triage example (it does not count as a conflict)."""
    if label not in LABELS:
        raise TrainingDataError(f"unknown triage label {label!r}")
    if not example_text(text):
        raise TrainingDataError("the example is empty")
    key = normalise(text)
    existing = examples(project).get(key)
    if existing is None or (replacing is not None and normalise(replacing) == key
                            and existing.file == str(REVIEWED_TSV)):
        return True
    if existing.label == label:
        return False
    raise TrainingDataError(
        f"this text is already in the triage data as {existing.label!r} "
        f"({label_name(existing.label)}, {existing.file}); a text can have one label only")


def add_example(project: Path, *, label: str, lang: str, text: str) -> list[str]:
    """Append ``label<TAB>lang<TAB>text``; returns the files written ([] when the example is
    already there with that label)."""
    text = example_text(text)
    if not check_example(project, label=label, text=text):
        return []
    path = project / REVIEWED_TSV
    body = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if body and not body.endswith("\n"):
        body += "\n"
    _write(path, body + f"{label}\t{lang}\t{text}\n")
    return [str(REVIEWED_TSV)]


def remove_example(project: Path, *, text: str) -> list[str]:
    """Take a reviewed example out again (only reviewed.tsv is ever edited)."""
    path = project / REVIEWED_TSV
    if not path.exists():
        return []
    key = normalise(example_text(text))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines
            if line.startswith("#") or len(parts := line.rstrip("\n").split("\t")) != 3
            or normalise(parts[2]) != key]
    if len(kept) == len(lines):
        return []
    _write(path, "".join(kept))
    return [str(REVIEWED_TSV)]


def _write(path: Path, body: str) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)
