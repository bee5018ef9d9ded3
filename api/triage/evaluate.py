"""Score the trained model on a GoEmotions-format TSV for the binary "negative" label:
``python -m api.triage.evaluate --goemotions-tsv FILE [--model DIR]``.

The last line printed is exactly
``negative-emotion F1=<f> precision=<p> recall=<r> vader_F1=<f> ms_per_message=<m>``
with VADER (compound <= -0.05) scored on the same rows in the same run as the baseline, and the
model's time per message measured on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ONE_CORE = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_core() -> None:
    """Pin numerical libraries to one thread (before numpy is imported)."""
    for var in ONE_CORE:
        os.environ[var] = "1"


@dataclass(frozen=True)
class Scores:
    f1: float
    precision: float
    recall: float


def binary_scores(pred: Sequence[bool], gold: Sequence[bool]) -> Scores:
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(f1, precision, recall)


def evaluation_line(tsv: Path, model_dir: Path) -> str:
    import time

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from api.triage.emotion import EmotionModel
    from api.triage.goemotions import read_tsv

    rows = read_tsv(tsv)
    gold = [r.negative for r in rows]
    texts = [r.text for r in rows]
    model = EmotionModel.load(model_dir)
    model.scores(texts[:50])  # warm-up
    started = time.perf_counter()
    scores = model.scores(texts)
    ms = (time.perf_counter() - started) * 1000 / max(1, len(texts))
    ours = binary_scores([s >= model.meta.threshold for s in scores], gold)
    vader = SentimentIntensityAnalyzer()
    vader_pred = [vader.polarity_scores(t)["compound"] <= -0.05 for t in texts]
    vader_f1 = binary_scores(vader_pred, gold).f1
    return (f"negative-emotion F1={ours.f1:.4f} precision={ours.precision:.4f} "
            f"recall={ours.recall:.4f} vader_F1={vader_f1:.4f} ms_per_message={ms:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    one_core()
    from api.triage.train import DEFAULT_OUT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goemotions-tsv", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.goemotions_tsv.is_file():
        print(f"no such file: {args.goemotions_tsv}", file=sys.stderr)
        return 2
    print(f"model: {args.model}; rows: {args.goemotions_tsv}")
    print(evaluation_line(args.goemotions_tsv, args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
