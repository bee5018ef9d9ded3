"""Intent classification and out-of-scope detection on CLINC150 (public data), with Rasa.

    make bench-nlu CLINC=path/to/clinc150.json SPLIT=val
    .venv-bot/bin/python -m benchmarks.clinc150 --clinc PATH --split val [--config YML]

The pipeline measured is config.yml's, the one the bot serves (`--config` measures another, e.g.
benchmarks/clinc150_configs/*.yml for `make bench-nlu-compare`). Only the NLU pipeline is read:
the policies are not part of it, and the FallbackClassifier threshold is tuned for CLINC150 as
below (config.yml's own threshold was chosen on the bot's data, for ~40 fan-care intents).
`--diet-epochs N` caps DIET's epochs when a DIET pipeline would not fit the time budget.

Protocol (docs/benchmarks.md, "NLU on public data"):
1. the config's pipeline, without its FallbackClassifier, is trained on 4 of 5 stratified folds
   of `train` + `oos_train` and predicts the fifth, a 20% held-out slice (`--tune-folds N` runs N
   of the `--folds` folds, i.e. cross-validation, at N times the cost);
2. the FallbackClassifier threshold is chosen on those out-of-fold predictions only: the highest
   out-of-scope recall that costs at most `--max-in-scope-drop` points of in-scope accuracy;
3. the pipeline, with FallbackClassifier at that threshold, is trained on all of `train` +
   `oos_train` (this is `train_seconds`) and scores `<split>` + `oos_<split>`, which nothing
   above has seen.
`--as-configured` skips 1-2 and keeps the config's own FallbackClassifier (for comparing
config.yml as written). A message counts as out of scope when its intent is `oos` or
`nlu_fallback`. The model goes to
models/bench/ (never where served models live), the figures to `--out` as JSON; the last line
printed is `clinc150 split=<s> in_scope_accuracy=<%> oos_recall=<%> train_seconds=<s>`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The served pipeline: what the bot answers fans with is what is measured.
DEFAULT_CONFIG = ROOT / "config.yml"
MODEL_DIR = ROOT / "models" / "bench"
RESULTS_DIR = ROOT / "var" / "bench-nlu"
OOS = "oos"
FALLBACK_INTENT = "nlu_fallback"
THRESHOLDS = [round(step / 100, 2) for step in range(100)]
RESULT_LINE = re.compile(
    r"^clinc150 split=(?P<split>\S+) in_scope_accuracy=(?P<in_scope_accuracy>\d+\.\d) "
    r"oos_recall=(?P<oos_recall>\d+\.\d) train_seconds=(?P<train_seconds>\d+)$"
)

Example = tuple[str, str]  # (text, intent)


class BenchError(Exception):
    """A problem the user can fix (missing file, unknown split); printed without a traceback."""


@dataclass(frozen=True)
class Prediction:
    """The classifier's top intent and its confidence, before any fallback threshold."""

    intent: str
    confidence: float


# --- data -----------------------------------------------------------------------------------


def load_clinc(path: Path, split: str) -> tuple[list[Example], list[Example]]:
    """Training examples (`train` + `oos_train`) and the scored ones (`<split>` + `oos_<split>`)."""
    if not path.is_file():
        raise BenchError(
            f"CLINC150 file not found: {path}\n"
            "Pass it with CLINC=/path/to/clinc150.json (or set DATASETS_DIR so that "
            "$DATASETS_DIR/clinc150/clinc150_train_val.json exists)."
        )
    data = json.loads(path.read_text())
    if split in ("train", "oos_train"):
        raise BenchError("the scored split must not be the training data")
    wanted = ["train", "oos_train", split, f"oos_{split}"]
    missing = [key for key in wanted if key not in data]
    if missing:
        raise BenchError(f"{path} has no {', '.join(missing)} (keys: {', '.join(sorted(data))})")

    def rows(key: str) -> list[Example]:
        return [(str(text), str(intent)) for text, intent in data[key]]

    return rows("train") + rows("oos_train"), rows(split) + rows(f"oos_{split}")


def stratified_folds(intents: Sequence[str], folds: int, seed: int = 42) -> list[int]:
    """A fold number per example, each intent dealt evenly over the folds in a seeded order."""
    by_intent: dict[str, list[int]] = defaultdict(list)
    for index, intent in enumerate(intents):
        by_intent[intent].append(index)
    rng = random.Random(seed)
    assignment = [0] * len(intents)
    offset = 0
    for intent in sorted(by_intent):
        indices = by_intent[intent]
        rng.shuffle(indices)
        for position, index in enumerate(indices):
            # The offset rotates so that small intents do not all land in fold 0.
            assignment[index] = (position + offset) % folds
        offset += len(indices)
    return assignment


# --- scoring --------------------------------------------------------------------------------


def is_out_of_scope(intent: str) -> bool:
    return intent in (OOS, FALLBACK_INTENT)


def apply_threshold(predictions: Sequence[Prediction], threshold: float) -> list[str]:
    """What a FallbackClassifier at `threshold` (ambiguity check off) would answer."""
    return [FALLBACK_INTENT if p.confidence < threshold else p.intent for p in predictions]


def score(golds: Sequence[str], predicted: Sequence[str]) -> dict:
    """In-scope accuracy and out-of-scope recall, in percent.

    In scope: correct only when the predicted intent is the gold one (a fallback is wrong).
    Out of scope: caught when predicted as `oos` or `nlu_fallback`.
    """
    in_scope = [(g, p) for g, p in zip(golds, predicted, strict=True) if g != OOS]
    oos = [p for g, p in zip(golds, predicted, strict=True) if g == OOS]
    return {
        "in_scope": len(in_scope),
        "oos": len(oos),
        "in_scope_accuracy": 100 * sum(g == p for g, p in in_scope) / len(in_scope)
        if in_scope else 0.0,
        "oos_recall": 100 * sum(is_out_of_scope(p) for p in oos) / len(oos) if oos else 0.0,
    }


def choose_threshold(golds: Sequence[str], predictions: Sequence[Prediction],
                     max_in_scope_drop: float) -> tuple[float, list[dict]]:
    """The threshold with the best oos recall whose in-scope accuracy is at most
    `max_in_scope_drop` points below that with no threshold; the lowest such on ties.

    Returns it and the sweep. Call it only with predictions on validation data.
    """
    sweep = []
    for threshold in THRESHOLDS:
        figures = score(golds, apply_threshold(predictions, threshold))
        sweep.append({"threshold": threshold,
                      "in_scope_accuracy": round(figures["in_scope_accuracy"], 2),
                      "oos_recall": round(figures["oos_recall"], 2)})
    floor = score(golds, [p.intent for p in predictions])["in_scope_accuracy"] - max_in_scope_drop
    allowed = [row for row in sweep if row["in_scope_accuracy"] >= floor - 1e-9]
    best = max(allowed, key=lambda row: (row["oos_recall"], -row["threshold"]))
    return best["threshold"], sweep


def result_line(split: str, in_scope_accuracy: float, oos_recall: float,
                train_seconds: float) -> str:
    """The last line printed: percentages with one decimal, whole seconds."""
    return (f"clinc150 split={split} in_scope_accuracy={in_scope_accuracy:.1f} "
            f"oos_recall={oos_recall:.1f} train_seconds={round(train_seconds)}")


def parse_result_line(line: str) -> dict:
    """The figures of a `result_line`; ValueError when the line is not one."""
    match = RESULT_LINE.match(line.strip())
    if not match:
        raise ValueError("not a clinc150 result line")
    return {"split": match["split"],
            "in_scope_accuracy": float(match["in_scope_accuracy"]),
            "oos_recall": float(match["oos_recall"]),
            "train_seconds": int(match["train_seconds"])}


# --- Rasa -----------------------------------------------------------------------------------


def pipeline_config(config: dict, fallback_threshold: float | None,
                    diet_epochs: int | None = None, as_configured: bool = False) -> dict:
    """The config's NLU pipeline only, its FallbackClassifier at `fallback_threshold` (ambiguity
    check off: only the threshold is tuned) or removed when None, or kept as written when
    `as_configured`; DIET epochs optionally overridden.
    """
    pipeline = []
    for component in copy.deepcopy(config["pipeline"]):
        if component["name"] == "FallbackClassifier" and not as_configured:
            continue
        if diet_epochs is not None and component["name"] == "DIETClassifier":
            component["epochs"] = diet_epochs
        pipeline.append(component)
    if fallback_threshold is not None and not as_configured:
        pipeline.append({"name": "FallbackClassifier", "threshold": fallback_threshold,
                         "ambiguity_threshold": 0.0})
    return {"recipe": config.get("recipe", "default.v1"), "assistant_id": "clinc150-bench",
            "language": config.get("language", "en"), "pipeline": pipeline}


def write_training_data(examples: Sequence[Example], path: Path) -> None:
    # Rasa's JSON format: the YAML one would read "[x](y)" inside a text as an entity.
    common = [{"text": text, "intent": intent, "entities": []} for text, intent in examples]
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": common}}))


def train(config: dict, examples: Sequence[Example], work: Path, name: str) -> tuple[Path, float]:
    """Trains an NLU model into models/bench/; returns its path and the training seconds."""
    from rasa.model_training import train_nlu

    work.mkdir(parents=True, exist_ok=True)
    config_path, data_path = work / f"{name}.config.yml", work / f"{name}.nlu.json"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    write_training_data(examples, data_path)
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    model = train_nlu(str(config_path), str(data_path), str(MODEL_DIR), fixed_model_name=name)
    seconds = time.monotonic() - started
    if not model:
        raise BenchError(f"Rasa did not train {name}")
    return Path(model), seconds


def predict(model: Path, texts: Sequence[str], batch: int = 256) -> list[tuple[str, Prediction]]:
    """(intent answered, top intent before the fallback) per text, many messages per graph run."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER

    processor = Agent.load(str(model)).processor
    target = processor.model_metadata.nlu_target
    answers = []
    for start in range(0, len(texts), batch):
        messages = [UserMessage(text) for text in texts[start:start + batch]]
        parsed = processor.graph_runner.run(
            inputs={PLACEHOLDER_MESSAGE: messages, PLACEHOLDER_TRACKER: None}, targets=[target]
        )[target]
        for message in parsed:
            intent = message.get("intent") or {}
            answered = intent.get("name") or FALLBACK_INTENT
            top = intent
            if answered == FALLBACK_INTENT:
                # The FallbackClassifier put itself first; the classifier's answer is next.
                ranking = message.get("intent_ranking") or []
                top = ranking[1] if len(ranking) > 1 else {}
            answers.append((answered, Prediction(top.get("name") or FALLBACK_INTENT,
                                                 float(top.get("confidence") or 0.0))))
    return answers


# --- the benchmark --------------------------------------------------------------------------


def out_of_fold_predictions(config: dict, examples: list[Example], folds: int, tune_folds: int,
                            work: Path, tag: str) -> tuple[list[str], list[Prediction], float]:
    """Golds and raw predictions for the examples of the first `tune_folds` of `folds` folds."""
    assignment = stratified_folds([intent for _, intent in examples], folds)
    golds: list[str] = []
    predictions: list[Prediction] = []
    seconds = 0.0
    for fold in range(tune_folds):
        fit = [e for e, f in zip(examples, assignment, strict=True) if f != fold]
        held = [e for e, f in zip(examples, assignment, strict=True) if f == fold]
        model, fold_seconds = train(config, fit, work, f"{tag}-fold{fold}")
        seconds += fold_seconds
        golds += [intent for _, intent in held]
        predictions += [top for _, top in predict(model, [text for text, _ in held])]
        model.unlink()
        print(f"tuning fold {fold + 1}/{tune_folds}: trained on {len(fit)} in "
              f"{fold_seconds:.0f} s, predicted {len(held)}", flush=True)
    return golds, predictions, seconds


def quiet_rasa() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    # No training cache: every training is timed from scratch and nothing piles up in .rasa/.
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"
    logging.basicConfig(level=logging.WARNING)
    # Rasa's notices about its own future (JSON data format, deprecated APIs) are not ours.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("rasa", "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # config.yml names the project's own components (bot.*)
    train_examples, scored_examples = load_clinc(args.clinc, args.split)
    config = yaml.safe_load(args.config.read_text())
    tag = f"clinc150-{args.config.stem}-{args.split}"
    print(f"{tag}: {len(train_examples)} training examples, {len(scored_examples)} to score "
          f"({args.split} + oos_{args.split})", flush=True)
    quiet_rasa()
    work = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    try:
        if args.as_configured:
            # The config's own FallbackClassifier, untouched: no tuning trainings.
            fallback = next((c for c in config["pipeline"] if c["name"] == "FallbackClassifier"),
                            {"threshold": 0.0})
            threshold, sweep, tuning_seconds = fallback["threshold"], [], 0.0
            tuned = {"in_scope_accuracy": None, "oos_recall": None}
        else:
            golds, raw, tuning_seconds = out_of_fold_predictions(
                pipeline_config(config, None, args.diet_epochs), train_examples, args.folds,
                args.tune_folds, work, tag)
            threshold, sweep = choose_threshold(golds, raw, args.max_in_scope_drop)
            tuned = {key: round(value, 2) for key, value
                     in score(golds, apply_threshold(raw, threshold)).items()}
            print(f"threshold {threshold:.2f} (on {len(golds)} out-of-fold training examples: "
                  f"in-scope {tuned['in_scope_accuracy']:.1f}, "
                  f"oos recall {tuned['oos_recall']:.1f})", flush=True)

        final_config = pipeline_config(config, threshold, args.diet_epochs, args.as_configured)
        model, train_seconds = train(final_config, train_examples, work, tag)
        parse_started = time.monotonic()
        answers = predict(model, [text for text, _ in scored_examples])
        parse_seconds = time.monotonic() - parse_started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    scored_golds = [intent for _, intent in scored_examples]
    figures = score(scored_golds, [answered for answered, _ in answers])
    no_threshold = score(scored_golds, [top.intent for _, top in answers])
    wrong = Counter(f"{gold} -> {answered}" for gold, (answered, _)
                    in zip(scored_golds, answers, strict=True)
                    if gold != answered and not (gold == OOS and is_out_of_scope(answered)))
    return {
        "clinc": str(args.clinc), "split": args.split, "config": str(args.config),
        "diet_epochs": args.diet_epochs, "model": str(model.relative_to(ROOT)),
        "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
        "training_examples": len(train_examples), "scored_in_scope": figures["in_scope"],
        "scored_oos": figures["oos"],
        "folds": args.folds, "tune_folds": 0 if args.as_configured else args.tune_folds,
        "as_configured": args.as_configured, "final_pipeline": final_config["pipeline"],
        "max_in_scope_drop": args.max_in_scope_drop, "threshold": threshold,
        "tuning_in_scope_accuracy": tuned["in_scope_accuracy"],
        "tuning_oos_recall": tuned["oos_recall"],
        "in_scope_accuracy": round(figures["in_scope_accuracy"], 2),
        "oos_recall": round(figures["oos_recall"], 2),
        "no_threshold_in_scope_accuracy": round(no_threshold["in_scope_accuracy"], 2),
        "no_threshold_oos_recall": round(no_threshold["oos_recall"], 2),
        "train_seconds": round(train_seconds, 1), "tuning_train_seconds": round(tuning_seconds, 1),
        "parse_seconds": round(parse_seconds, 1),
        "total_seconds": round(time.monotonic() - started),
        "commonest_errors": dict(wrong.most_common(15)),  # intent names only, no message text
        "threshold_sweep": sweep,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, required=True, help="CLINC150-format JSON")
    parser.add_argument("--split", default="val", help="scores <split> + oos_<split>")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="Rasa config whose NLU pipeline is measured (default: config.yml)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results JSON folder")
    parser.add_argument("--folds", type=int, default=5, help="folds of the training data")
    parser.add_argument("--tune-folds", type=int, default=1,
                        help="how many of those folds to train and predict for the threshold")
    parser.add_argument("--as-configured", action="store_true",
                        help="no threshold tuning: keep the config's FallbackClassifier as is")
    parser.add_argument("--max-in-scope-drop", type=float, default=1.0,
                        help="in-scope accuracy points the threshold may cost on the folds")
    parser.add_argument("--diet-epochs", type=int, default=None,
                        help="override the epochs of every DIETClassifier in the config")
    args = parser.parse_args(argv)
    if args.folds < 2 or not 1 <= args.tune_folds <= args.folds:
        parser.error("need --folds >= 2 and 1 <= --tune-folds <= --folds")
    try:
        results = run(args)
    except BenchError as error:
        print(f"bench-nlu: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"clinc150-{args.config.stem}-{args.split}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"threshold {results['threshold']:.2f}; with no threshold: in-scope "
          f"{results['no_threshold_in_scope_accuracy']:.1f}, oos recall "
          f"{results['no_threshold_oos_recall']:.1f}; tuning trainings "
          f"{results['tuning_train_seconds']:.0f} s, parsing {results['parse_seconds']:.1f} s, "
          f"total {results['total_seconds']} s; model {results['model']}; results {out}")
    sys.stderr.flush()
    print(result_line(args.split, results["in_scope_accuracy"], results["oos_recall"],
                      results["train_seconds"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
