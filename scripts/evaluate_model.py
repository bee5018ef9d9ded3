"""Score one trained Rasa model: held-out NLU, out-of-scope messages, conversation tests, messages.

    python scripts/evaluate_model.py --model models/bot-<hash>.tar.gz --out DIR \
        [--nlu tests/nlu/test_nlu.yml] [--oos tests/nlu/out_of_scope.yml] \
        [--stories tests/conversations] [--messages FILE.json] [--progress] \
        [--language es=tests/nlu/test_nlu_es.yml ...]

Runs in the bot environment (.venv-bot). The model is loaded once and used for everything.
Writes DIR/report.json (read by the switchboard: its format is a contract) and DIR/confusion.png.
Exits 0 when the model was scored, however badly; 2 with one line on stderr when the input is
unusable, 1 when the evaluation itself broke.

How the numbers relate to `rasa test`:
- NLU: every prediction is taken as the bot would act on it, so a message that falls back
  (`nlu_fallback`) counts as wrong. `rasa test nlu` instead scores the intent underneath the
  fallback, so its accuracy can be higher. macro_f1 averages over the intents of the test file;
  Rasa's "macro avg" also averages labels that were only predicted (F1 0), so it can be lower.
  weighted_f1 is unaffected by that choice.
- Languages: the held-out file of each language the bot speaks (English, Spanish, German:
  tests/nlu/test_nlu.yml, test_nlu_es.yml, test_nlu_de.yml, or those given with --language) is
  scored the same way, and the report's "languages" has accuracy and macro-F1 per language. The
  "nlu" figures (what the activation gate judges) stay those of --nlu alone; a file scored for
  both is parsed once. The last line on stdout names the figures per language.
- Conversations: Rasa's own e2e story test (what `rasa test core --e2e` runs), but every story is
  run to the end instead of stopping at the first wrong prediction.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NLU = ROOT / "tests" / "nlu" / "test_nlu.yml"
# The held-out file of each language the bot answers in (scored when present, --language
# replaces the list). Never trained on.
DEFAULT_LANGUAGE_FILES = {
    "en": DEFAULT_NLU,
    "es": ROOT / "tests" / "nlu" / "test_nlu_es.yml",
    "de": ROOT / "tests" / "nlu" / "test_nlu_de.yml",
}
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
# A caught out-of-scope message: the bot either recognises it or asks to rephrase.
OOS_CAUGHT_INTENTS = frozenset({OUT_OF_SCOPE_INTENT, FALLBACK_INTENT})
DIGITS = 4


class UnusableInput(Exception):
    """The command line points at something that cannot be evaluated."""


# --- pure functions (unit-tested) ------------------------------------------------------------


def rounded(value: float) -> float:
    return round(float(value), DIGITS)


def intent_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, per-intent scores and the confusion matrix.

    Per-intent scores and the averages cover the intents of the test file; the confusion
    matrix covers every label seen, gold or predicted (e.g. `nlu_fallback`).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    if len(gold) != len(predicted):
        raise ValueError("gold and predicted labels differ in length")
    if not gold:
        return {"examples": 0, "accuracy": 0.0, "macro_f1": 0.0, "weighted_f1": 0.0,
                "per_intent": {}, "labels": [], "confusion": []}
    intents = sorted(set(gold))
    labels = sorted(set(gold) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=intents, zero_division=0
    )
    per_intent = {
        intent: {"precision": rounded(p), "recall": rounded(r), "f1": rounded(f),
                 "support": int(s)}
        for intent, p, r, f, s in zip(intents, precision, recall, f1, support, strict=True)
    }
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    return {
        "examples": len(gold),
        "accuracy": rounded(correct / len(gold)),
        "macro_f1": rounded(sum(f1) / len(intents)),
        "weighted_f1": rounded((f1 * support).sum() / support.sum()),
        "per_intent": per_intent,
        "labels": labels,
        "confusion": confusion_matrix(gold, predicted, labels=labels).tolist(),
    }


def nlu_errors(texts: Sequence[str], gold: Sequence[str],
               parses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The misclassified examples, in file order."""
    return [
        {"text": text, "expected": expected, "predicted": intent_name(parse),
         "confidence": intent_confidence(parse)}
        for text, expected, parse in zip(texts, gold, parses, strict=True)
        if intent_name(parse) != expected
    ]


def oos_summary(predicted: Sequence[str]) -> dict[str, Any]:
    caught = sum(intent in OOS_CAUGHT_INTENTS for intent in predicted)
    return {"examples": len(predicted), "caught": caught,
            "rate": rounded(caught / len(predicted)) if predicted else 0.0}


def language_metrics(texts: Sequence[str], gold: Sequence[str],
                     parses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One language's held-out figures: the headline numbers of :func:`intent_metrics` (no
    confusion matrix) and its misclassified examples."""
    metrics = intent_metrics(gold, [intent_name(parse) for parse in parses])
    return {"examples": metrics["examples"], "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"], "weighted_f1": metrics["weighted_f1"],
            "intents": len(metrics["per_intent"]),
            "errors": nlu_errors(texts, gold, parses)}


def language_files(specs: Sequence[str] | None) -> dict[str, Path]:
    """``--language LANG=FILE`` options (in order, a later one replacing an earlier one), else
    the default held-out files that exist."""
    if not specs:
        return {code: path for code, path in DEFAULT_LANGUAGE_FILES.items() if path.is_file()}
    files: dict[str, Path] = {}
    for spec in specs:
        code, sep, path = spec.partition("=")
        code = code.strip().lower()
        if not sep or not LANGUAGE_CODE.match(code) or not path.strip():
            raise UnusableInput(f"--language must be LANG=FILE with a 2-letter code: {spec!r}")
        files[code] = Path(path.strip())
    return files


def summary_line(nlu: dict[str, Any], languages: dict[str, dict[str, Any]]) -> str:
    """The figures in one line, overall (--nlu) then per language."""
    parts = [f"nlu accuracy={nlu['accuracy']:.4f} macro_f1={nlu['macro_f1']:.4f} "
             f"examples={nlu['examples']}"]
    parts += [f"{code} accuracy={figures['accuracy']:.4f} macro_f1={figures['macro_f1']:.4f} "
              f"examples={figures['examples']}" for code, figures in languages.items()]
    return "evaluate " + " | ".join(parts)


def message_results(messages: Sequence[dict[str, Any]],
                    parses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": message["id"], "text": message["text"], "expected": message["expected"],
         "predicted": intent_name(parse), "confidence": intent_confidence(parse),
         "correct": intent_name(parse) == message["expected"]}
        for message, parse in zip(messages, parses, strict=True)
    ]


def intent_name(parse: dict[str, Any]) -> str:
    return (parse.get("intent") or {}).get("name") or ""


def intent_confidence(parse: dict[str, Any]) -> float:
    return rounded((parse.get("intent") or {}).get("confidence") or 0.0)


def validate_messages(data: Any) -> list[dict[str, Any]]:
    """The --messages file: a JSON list of {"id": int, "text": str, "expected": str}."""
    if not isinstance(data, list):
        raise UnusableInput("messages file must hold a JSON list")
    for position, item in enumerate(data):
        if not (isinstance(item, dict) and isinstance(item.get("id"), int)
                and not isinstance(item.get("id"), bool)
                and isinstance(item.get("text"), str) and isinstance(item.get("expected"), str)):
            raise UnusableInput(
                f"messages[{position}] must be {{\"id\": int, \"text\": str, \"expected\": str}}"
            )
    return data


def display_path(path: Path) -> str:
    """A path inside the project relative to it (as the console shows files), else as is."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- Rasa ------------------------------------------------------------------------------------


def quiet_rasa() -> None:
    """Keep stdout for progress lines: Rasa logs errors only, to stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # Rasa's progress bars
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(name)s: %(message)s")
    # Libraries add their own warning filters as they are imported; the console needs none of
    # their deprecation notices, so warnings are dropped however they are filtered.
    warnings.showwarning = lambda *args, **kwargs: None
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # Unconfigured, structlog prints Rasa's debug events to stdout.
    configure_structlog(logging.ERROR)
    configure_logging_and_warnings(logging.ERROR, warn_only_once=False)


def load_examples(path: Path) -> tuple[list[str], list[str]]:
    """Texts and intents of a Rasa NLU file, read by Rasa's own reader."""
    from rasa.shared.nlu.training_data.loading import load_data

    try:
        data = load_data(str(path))
    except Exception as error:  # Rasa raises several kinds for unreadable files
        raise UnusableInput(f"cannot read {path}: {one_line(error)}") from error
    examples = [example for example in data.intent_examples if example.get("text")]
    if not examples:
        raise UnusableInput(f"no labelled examples in {path}")
    return [example.get("text") for example in examples], [example.get("intent")
                                                         for example in examples]


async def parse_all(agent: Any, texts: Sequence[str],
                    on_progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Parse each text as the running bot would (FallbackClassifier included)."""
    from rasa.core.channels.channel import UserMessage

    parses = []
    for done, text in enumerate(texts, start=1):
        parses.append(await agent.processor.parse_message(UserMessage(text)))
        if on_progress:
            on_progress(done)
    return parses


async def run_conversation_tests(agent: Any, stories: Path) -> dict[str, Any]:
    """Rasa's e2e story test, as `rasa test core --e2e` runs it, every story to its end."""
    # The private helpers that rasa.core.test.test() is made of (rasa is pinned to 3.6.21):
    # they hand back the failed trackers, whose sender_id is the story name, without writing
    # result files or plots.
    from rasa.core.test import _collect_story_predictions, _create_data_generator

    generator = _create_data_generator(str(stories), agent, None, True)
    trackers = generator.generate_story_trackers()
    evaluation, total, _ = await _collect_story_predictions(
        trackers, agent, fail_on_prediction_errors=False, use_e2e=True
    )
    failed_names = [tracker.sender_id for tracker in evaluation.failed_stories]
    return {"stories": total, "failed": len(failed_names), "failed_names": failed_names}


# --- plot ------------------------------------------------------------------------------------


def plot_confusion(labels: Sequence[str], confusion: Sequence[Sequence[int]], path: Path,
                   title: str) -> None:
    """Rows (gold) normalised for colour, counts written in the non-empty cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.array(confusion, dtype=float).reshape(len(labels), len(labels))
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    side = max(6.0, 0.3 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_yticklabels(labels, fontsize=7)
    for row, col in zip(*np.nonzero(counts), strict=True):
        ax.text(col, row, int(counts[row, col]), ha="center", va="center", fontsize=6,
                color="white" if shares[row, col] > 0.5 else "black")
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("expected intent")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="share of the expected intent")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- command line ----------------------------------------------------------------------------


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, percent: float, phase: str) -> None:
        if self.enabled:
            print(f"progress evaluate {int(percent)} {phase}", flush=True)


def check_inputs(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    """Fail fast, before the slow model load; returns the --messages list if given."""
    if not args.model.is_file():
        raise UnusableInput(f"model not found: {args.model}")
    for label, path in (("NLU file", args.nlu), ("out-of-scope file", args.oos)):
        if path is not None and not path.is_file():
            raise UnusableInput(f"{label} not found: {path}")
    if args.stories is not None and not args.stories.exists():
        raise UnusableInput(f"stories not found: {args.stories}")
    args.language_files = language_files(args.language)
    for code, path in args.language_files.items():
        if not path.is_file():
            raise UnusableInput(f"NLU file for language {code} not found: {path}")
    if args.messages is None:
        return None
    try:
        return validate_messages(json.loads(args.messages.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise UnusableInput(f"cannot read messages {args.messages}: {one_line(error)}") from error


async def evaluate(args: argparse.Namespace, messages: list[dict[str, Any]] | None,
                   progress: Progress) -> dict[str, Any]:
    started = time.monotonic()
    progress(0, "load")
    quiet_rasa()
    nlu_texts, nlu_gold = load_examples(args.nlu)
    files = args.language_files if hasattr(args, "language_files") \
        else language_files(args.language)
    language_examples = {code: load_examples(path) for code, path in files.items()}
    oos_texts = load_examples(args.oos)[0] if args.oos else None
    from rasa.core.agent import Agent

    progress(5, "load")
    try:
        agent = Agent.load(str(args.model))
    except Exception as error:
        raise UnusableInput(f"cannot load model {args.model}: {one_line(error)}") from error
    if not agent.is_ready():
        raise UnusableInput(f"cannot load model {args.model}: no processor")
    progress(15, "nlu")

    # --nlu, then each language's file not already parsed: one progress bar from 15 to 60.
    todo: dict[Path, Sequence[str]] = {args.nlu.resolve(): nlu_texts}
    for code, path in files.items():
        todo.setdefault(path.resolve(), language_examples[code][0])
    parsed: dict[Path, list[dict[str, Any]]] = {}
    total = sum(len(texts) for texts in todo.values())
    step = max(1, total // 10)
    done_before = 0
    for key, texts in todo.items():
        phase = "nlu" if key == args.nlu.resolve() else "languages"

        def nlu_progress(done: int, offset: int = done_before, phase: str = phase) -> None:
            if (offset + done) % step == 0:
                progress(15 + 45 * (offset + done) / total, phase)

        parsed[key] = await parse_all(agent, texts, nlu_progress)
        done_before += len(texts)

    nlu_parses = parsed[args.nlu.resolve()]
    nlu = intent_metrics(nlu_gold, [intent_name(parse) for parse in nlu_parses])
    nlu["errors"] = nlu_errors(nlu_texts, nlu_gold, nlu_parses)
    languages = {}
    for code, path in files.items():
        texts, gold = language_examples[code]
        languages[code] = {"file": display_path(path), "sha256": file_sha256(path),
                           **language_metrics(texts, gold, parsed[path.resolve()])}

    oos = None
    if oos_texts is not None:
        progress(60, "oos")
        oos = oos_summary([intent_name(parse) for parse in await parse_all(agent, oos_texts)])

    conversations = None
    if args.stories is not None:
        progress(70, "conversations")
        conversations = await run_conversation_tests(agent, args.stories)

    message_report: list[dict[str, Any]] = []
    if messages:
        progress(90, "messages")
        parses = await parse_all(agent, [message["text"] for message in messages])
        message_report = message_results(messages, parses)

    progress(95, "plot")
    plot_confusion(nlu["labels"], nlu["confusion"], args.out / "confusion.png",
                   f"{args.model.name} on {args.nlu.name}: accuracy {nlu['accuracy']:.3f}, "
                   f"macro-F1 {nlu['macro_f1']:.3f}")
    return {
        "model": args.model_as_given,
        "model_sha256": file_sha256(args.model),
        "nlu_file": args.nlu_as_given,
        "nlu_sha256": file_sha256(args.nlu),
        "seconds": rounded(time.monotonic() - started),
        "nlu": nlu,
        "languages": languages,
        "oos": oos,
        "conversations": conversations,
        "messages": message_report,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="trained model archive (.tar.gz)")
    parser.add_argument("--out", required=True, type=Path, help="directory for the report")
    parser.add_argument("--nlu", default=None, help=f"held-out NLU file (default {DEFAULT_NLU})")
    parser.add_argument("--oos", type=Path, default=None, help="out-of-scope NLU file")
    parser.add_argument("--stories", type=Path, default=None, help="conversation tests (e2e)")
    parser.add_argument("--messages", type=Path, default=None,
                        help='JSON list of {"id", "text", "expected"}')
    parser.add_argument("--language", action="append", default=None, metavar="LANG=FILE",
                        help="a held-out NLU file of one language, scored for the report's "
                             "per-language figures (repeat it; default: "
                             + ", ".join(f"{code}={path.relative_to(ROOT)}"
                                         for code, path in DEFAULT_LANGUAGE_FILES.items())
                             + ", those that exist)")
    parser.add_argument("--progress", action="store_true",
                        help="print `progress evaluate <percent> <phase>` lines")
    args = parser.parse_args(argv)
    # The report names the files as the caller gave them.
    args.model_as_given = args.model
    args.model = Path(args.model)
    args.nlu_as_given = args.nlu or str(DEFAULT_NLU.relative_to(ROOT))
    args.nlu = Path(args.nlu) if args.nlu else DEFAULT_NLU
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.progress)
    try:
        messages = check_inputs(args)
        args.out.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(evaluate(args, messages, progress))
    except UnusableInput as error:
        print(f"evaluate_model: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"evaluate_model: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # one line for the console; the cause is in the message
        print(f"evaluate_model: evaluation failed: {one_line(error)}", file=sys.stderr)
        return 1
    report_path = args.out / "report.json"
    # Written whole, then renamed: the switchboard never reads half a report.
    partial = report_path.with_suffix(".json.part")
    partial.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(report_path)
    print(summary_line(report["nlu"], report["languages"]), flush=True)
    progress(100, "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
