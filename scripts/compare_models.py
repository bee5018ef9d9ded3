"""Compare two reports of scripts/evaluate_model.py: the active model against a candidate.

    python scripts/compare_models.py --active A/report.json --candidate B/report.json --out DIR

Writes DIR/comparison.json (with ``per_language``: accuracy and macro-F1 per language, both
models side by side), DIR/per_intent_f1.png and DIR/summary.png. Needs matplotlib (the bot
environment has it); no network, no display. Exits 2 with one line on stderr for unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DIGITS = 4
ACTIVE_COLOUR = "#9e9e9e"
CANDIDATE_COLOUR = "#1f77b4"
FELL_COLOUR = "#d62728"
# The bot's languages first, in this order; any other language a report has follows by code.
LANGUAGE_ORDER = ("en", "es", "de")
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "de": "German"}


class UnusableInput(Exception):
    """A report that cannot be compared."""


# --- pure functions (unit-tested) ------------------------------------------------------------


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one report; null where the report has no such part."""
    nlu = report["nlu"]
    oos = report.get("oos")
    conversations = report.get("conversations")
    messages = report.get("messages") or []
    return {
        "model": report.get("model"),
        "model_sha256": report.get("model_sha256"),
        "nlu_examples": nlu["examples"],
        "accuracy": nlu["accuracy"],
        "macro_f1": nlu["macro_f1"],
        "weighted_f1": nlu["weighted_f1"],
        "oos_rate": oos["rate"] if oos else None,
        "conversations_stories": conversations["stories"] if conversations else None,
        "conversations_failed": conversations["failed"] if conversations else None,
        "messages_correct": sum(bool(message["correct"]) for message in messages),
        "messages_total": len(messages),
        "languages": {code: {key: figures.get(key)
                             for key in ("examples", "accuracy", "macro_f1")}
                      for code, figures in (report.get("languages") or {}).items()},
    }


def language_order(codes: Sequence[str] | set[str]) -> list[str]:
    known = [code for code in LANGUAGE_ORDER if code in codes]
    return known + sorted(set(codes) - set(LANGUAGE_ORDER))


def per_language(active: dict[str, Any], candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy and macro-F1 of both models on each language's held-out file; null for a
    language one report lacks (e.g. a report written before languages were scored)."""
    active_langs = active.get("languages") or {}
    candidate_langs = candidate.get("languages") or {}
    rows = []
    for code in language_order(set(active_langs) | set(candidate_langs)):
        a, c = active_langs.get(code) or {}, candidate_langs.get(code) or {}
        row: dict[str, Any] = {"language": code,
                               "examples": c.get("examples", a.get("examples"))}
        for key in ("accuracy", "macro_f1"):
            row[f"active_{key}"] = a.get(key)
            row[f"candidate_{key}"] = c.get(key)
            row[f"{key}_delta"] = (round(c[key] - a[key], DIGITS)
                                   if a.get(key) is not None and c.get(key) is not None
                                   else None)
        rows.append(row)
    return rows


def per_intent_deltas(active: dict[str, Any], candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-intent F1 of both models, by intent name; null for an intent one report lacks."""
    active_scores = active["nlu"]["per_intent"]
    candidate_scores = candidate["nlu"]["per_intent"]
    rows = []
    for intent in sorted(set(active_scores) | set(candidate_scores)):
        active_f1 = active_scores[intent]["f1"] if intent in active_scores else None
        candidate_f1 = candidate_scores[intent]["f1"] if intent in candidate_scores else None
        delta = (round(candidate_f1 - active_f1, DIGITS)
                 if active_f1 is not None and candidate_f1 is not None else None)
        rows.append({"intent": intent, "active_f1": active_f1, "candidate_f1": candidate_f1,
                     "delta": delta})
    return rows


def message_changes(active: dict[str, Any], candidate: dict[str, Any]) -> dict[str, list[int]]:
    """Ids of messages the candidate newly gets right, and of those both get wrong.

    Only messages scored in both reports are compared (matched by id).
    """
    active_correct = {message["id"]: message["correct"] for message in active.get("messages") or []}
    newly_correct, still_wrong = [], []
    for message in candidate.get("messages") or []:
        if message["id"] not in active_correct:
            continue
        if message["correct"] and not active_correct[message["id"]]:
            newly_correct.append(message["id"])
        elif not message["correct"] and not active_correct[message["id"]]:
            still_wrong.append(message["id"])
    return {"newly_correct_messages": newly_correct, "still_wrong_messages": still_wrong}


def compare(active: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    return {
        "active": summarize(active),
        "candidate": summarize(candidate),
        "per_intent": per_intent_deltas(active, candidate),
        "per_language": per_language(active, candidate),
        **message_changes(active, candidate),
    }


def language_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per-language accuracy, active vs candidate, one line each (stdout)."""
    def fmt(value: float | None, signed: bool = False) -> str:
        return "n/a" if value is None else (f"{value:+.4f}" if signed else f"{value:.4f}")

    return [f"language {row['language']} examples={row['examples']} "
            f"accuracy active={fmt(row['active_accuracy'])} "
            f"candidate={fmt(row['candidate_accuracy'])} "
            f"delta={fmt(row['accuracy_delta'], True)} "
            f"macro_f1 active={fmt(row['active_macro_f1'])} "
            f"candidate={fmt(row['candidate_macro_f1'])}" for row in rows]


def plot_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest F1 falls first, then by name; intents scored by one model only go last."""
    return sorted(rows, key=lambda row: (row["delta"] is None, row["delta"] or 0.0,
                                         row["intent"]))


def load_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnusableInput(f"cannot read {path}: {error}") from error
    if not isinstance(report, dict) or not isinstance(report.get("nlu"), dict) or not all(
        key in report["nlu"] for key in ("accuracy", "macro_f1", "per_intent")
    ):
        raise UnusableInput(f"{path} is not a report of scripts/evaluate_model.py")
    return report


# --- plots -----------------------------------------------------------------------------------


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_per_intent(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Horizontal grouped bars, largest fall on top; fallen intents in red."""
    plt = pyplot()
    ordered = plot_order(rows)
    height = 0.38
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.32 * len(ordered) + 1.5)))
    for position, row in enumerate(ordered):
        fell = row["delta"] is not None and row["delta"] < 0
        if row["active_f1"] is not None:
            ax.barh(position - height / 2, row["active_f1"], height, color=ACTIVE_COLOUR)
        if row["candidate_f1"] is not None:
            ax.barh(position + height / 2, row["candidate_f1"], height,
                    color=FELL_COLOUR if fell else CANDIDATE_COLOUR)
        if row["delta"]:
            ax.text(1.01, position, f"{row['delta']:+.2f}", va="center", fontsize=7,
                    color=FELL_COLOUR if fell else "black")
    ax.set_yticks(range(len(ordered)))
    ax.set_yticklabels([row["intent"] for row in ordered], fontsize=7)
    for label, row in zip(ax.get_yticklabels(), ordered, strict=True):
        if row["delta"] is not None and row["delta"] < 0:
            label.set_color(FELL_COLOUR)
            label.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("F1 on the held-out NLU file")
    ax.set_title("Per-intent F1: active (grey) vs candidate (blue; red where it fell)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_summary(comparison: dict[str, Any], path: Path) -> None:
    """Accuracy, macro-F1, out-of-scope caught rate and accuracy per language, the two models
    side by side."""
    plt = pyplot()
    metrics = [("accuracy", "intent accuracy"), ("macro_f1", "macro-F1"),
               ("oos_rate", "out-of-scope caught")]
    codes = [row["language"] for row in comparison.get("per_language") or []]
    metrics += [(f"language:{code}", f"accuracy\n{LANGUAGE_NAMES.get(code, code)}")
                for code in codes]
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(metrics)), 4))
    for offset, (side, colour) in ((-width / 2, ("active", ACTIVE_COLOUR)),
                                   (width / 2, ("candidate", CANDIDATE_COLOUR))):
        summary = comparison[side]
        for position, (key, _) in enumerate(metrics):
            if key.startswith("language:"):
                value = (summary.get("languages") or {}).get(key[9:], {}).get("accuracy")
            else:
                value = summary[key]
            x = position + offset
            if value is None:
                ax.text(x, 0.02, "n/a", ha="center", fontsize=8)
                continue
            ax.bar(x, value, width, color=colour, label=side if position == 0 else None)
            ax.text(x, value + 0.01, f"{value:.3f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([label for _, label in metrics], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Active vs candidate model", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", required=True, type=Path)
    parser.add_argument("--candidate", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        comparison = compare(load_report(args.active), load_report(args.candidate))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "comparison.json").write_text(json.dumps(comparison, indent=1) + "\n",
                                                  encoding="utf-8")
        plot_per_intent(comparison["per_intent"], args.out / "per_intent_f1.png")
        plot_summary(comparison, args.out / "summary.png")
        for line in language_lines(comparison["per_language"]):
            print(line)
    except ImportError as error:  # e.g. run by an interpreter without matplotlib
        print(f"compare_models: cannot plot: {error}", file=sys.stderr)
        return 2
    except (UnusableInput, OSError, KeyError, TypeError) as error:
        print(f"compare_models: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
