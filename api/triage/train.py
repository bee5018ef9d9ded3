"""Train the negative-emotion classifier: ``python -m api.triage.train [--force] [--out DIR]``.

Data: the project's own labelled fan messages (``data/triage/emotion_*.tsv``) and GoEmotions
``train.tsv``, which the repository carries (``data/triage/goemotions/``, Apache-2.0), so every
clone trains the model measured in docs/benchmarks.md. GoEmotions ``dev.tsv`` only chooses the
decision threshold; no test split is ever read. Every source of randomness is seeded, so the same
data gives the same model. The model goes to ``models/triage/`` with a stamp (hash of the data,
this code and the config): an unchanged stamp means nothing to do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from api.triage.evaluate import one_core
from api.triage.goemotions import Example, read_tsv

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
FAN_DATA_GLOB = "emotion_*.tsv"
FAN_DATA_DIR = REPO_ROOT / "data" / "triage"
GOEMOTIONS_DIR = FAN_DATA_DIR / "goemotions"
DEFAULT_OUT = REPO_ROOT / "models" / "triage"
META_FILE = "triage_meta.json"  # = emotion.META_FILE (not imported: keeps spaCy out of --help)


@dataclass(frozen=True)
class TrainConfig:
    """Why these: the ensemble (bag of n-grams + a small CNN over hashed word features) beat the
    bag of words alone by ~4 F1 points on GoEmotions; it overfits after 2 epochs
    (dev F1 by epoch: 0.607, 0.621, 0.604)."""

    architecture: str = "ensemble"  # "ensemble" | "bow" (bow: fast, for tests)
    width: int = 96
    ngram_size: int = 2
    epochs: int = 2
    dropout: float = 0.2
    fan_weight: int = 3  # fan messages are few and in-domain: repeat them
    stack_holdout: float = 0.1  # share of GoEmotions train kept out to fit the VADER stacker
    seed: int = 13


def textcat_model(cfg: TrainConfig) -> dict:
    bow = {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": False,
           "ngram_size": cfg.ngram_size, "no_output_layer": False, "length": 262144}
    if cfg.architecture == "bow":
        return bow
    return {
        "@architectures": "spacy.TextCatEnsemble.v2", "nO": None, "linear_model": bow,
        "tok2vec": {
            "@architectures": "spacy.Tok2Vec.v2",
            "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": cfg.width,
                      "rows": [5000, 2500, 2500, 2500],
                      "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                      "include_static_vectors": False},
            "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": cfg.width,
                       "window_size": 1, "maxout_pieces": 3, "depth": 2},
        },
    }


def read_fan_tsv(path: Path) -> list[Example]:
    """``label<TAB>text`` lines (label 1 = negative, 0 = not); '#' lines are comments."""
    rows: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 1)
        rows.append(Example(text=text.strip(), negative=label.strip() == "1"))
    return rows


def fan_files(data_dir: Path = FAN_DATA_DIR) -> list[Path]:
    return sorted(data_dir.glob(FAN_DATA_GLOB))


def stamp(inputs: Sequence[Path], cfg: TrainConfig) -> str:
    """Hash of the training data, the training code and the config."""
    h = hashlib.sha256()
    code = [Path(__file__), Path(__file__).with_name("goemotions.py"),
            Path(__file__).with_name("stacker.py")]
    for path in [*inputs, *code]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    return h.hexdigest()[:16]


def best_threshold(scores: Sequence[float], gold: Sequence[bool]) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over a grid."""
    best = (0.5, -1.0)
    positives = sum(gold)
    for i in range(5, 96):
        th = i / 100
        pred = [s >= th for s in scores]
        tp = sum(p and g for p, g in zip(pred, gold, strict=True))
        f1 = 2 * tp / (sum(pred) + positives) if (sum(pred) + positives) else 0.0
        if f1 > best[1]:
            best = (th, f1)
    return best


def train(out_dir: Path, *, fan: Sequence[Path], goemotions: Path = GOEMOTIONS_DIR,
          cfg: TrainConfig = TrainConfig(), quiet: bool = False) -> dict:
    """Train and save a model; returns its metadata (also written next to it)."""
    import spacy
    from spacy.training import Example as SpacyExample
    from spacy.util import compounding, fix_random_seed, minibatch

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    fix_random_seed(cfg.seed)
    rows: list[Example] = []
    used: list[str] = []
    for path in fan:
        fan_rows = read_fan_tsv(path)
        rows += fan_rows * cfg.fan_weight
        used.append(f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}"
                    f" ({len(fan_rows)} fan messages)")
    train_tsv, dev_tsv = goemotions / "train.tsv", goemotions / "dev.tsv"
    go_rows = read_tsv(train_tsv)
    random.Random(cfg.seed).shuffle(go_rows)
    cut = int(len(go_rows) * cfg.stack_holdout)
    holdout, go_rows = go_rows[:cut], go_rows[cut:]
    rows += go_rows
    used.append(f"goemotions/train.tsv ({len(go_rows)} comments for the textcat, "
                f"{len(holdout)} held out for the VADER stacker)")
    say("triage: training on " + "; ".join(used))

    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat_multilabel", config={"model": textcat_model(cfg)})
    textcat.add_label("negative")
    examples = [SpacyExample.from_dict(nlp.make_doc(r.text),
                                       {"cats": {"negative": float(r.negative)}}) for r in rows]
    rng = random.Random(cfg.seed)
    optimizer = nlp.initialize(lambda: examples[:1000])
    for epoch in range(cfg.epochs):
        started = time.monotonic()
        rng.shuffle(examples)
        losses: dict[str, float] = {}
        for batch in minibatch(examples, size=compounding(8.0, 64.0, 1.001)):
            nlp.update(batch, sgd=optimizer, drop=cfg.dropout, losses=losses)
        say(f"triage: epoch {epoch + 1}/{cfg.epochs} loss={losses.get('textcat_multilabel', 0):.1f}"
            f" ({time.monotonic() - started:.0f}s)")

    stacker = fit_stacker(nlp, holdout)
    say(f"triage: VADER stacker fitted on {len(holdout)} held-out train comments")
    dev = read_tsv(dev_tsv)
    scores = combined_scores(nlp, stacker, [r.text for r in dev])
    threshold, f1 = best_threshold(scores, [r.negative for r in dev])
    source = f"chosen on goemotions/dev.tsv (F1 {f1:.4f}; threshold only)"
    say(f"triage: threshold {threshold:.2f}, {source}")

    meta = {"threshold": threshold, "data": used, "threshold_source": source,
            "stamp": stamp([*fan, train_tsv, dev_tsv], cfg), "config": asdict(cfg),
            "stacker": asdict(stacker)}
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    nlp.to_disk(tmp)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # the old model stays in place until the new one is complete
    return meta


def combined_scores(nlp, stacker, texts: Sequence[str]) -> list[float]:
    """The textcat's scores, through the stacker when there is one."""
    from api.triage.stacker import features

    ps = [d.cats["negative"] for d in nlp.pipe(texts, batch_size=256)]
    if stacker is None:
        return ps
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    pairs = zip(ps, texts, strict=True)
    return [stacker.score(features(p, vader.polarity_scores(t))) for p, t in pairs]


def fit_stacker(nlp, holdout: Sequence[Example]):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from api.triage.stacker import features, fit

    vader = SentimentIntensityAnalyzer()
    texts = [r.text for r in holdout]
    ps = [d.cats["negative"] for d in nlp.pipe(texts, batch_size=256)]
    xs = [features(p, vader.polarity_scores(t)) for p, t in zip(ps, texts, strict=True)]
    return fit(xs, [r.negative for r in holdout])


def current_stamp(out_dir: Path) -> str | None:
    try:
        return json.loads((out_dir / META_FILE).read_text())["stamp"]
    except (OSError, ValueError, KeyError):
        return None


def goemotions_files(go_dir: Path = GOEMOTIONS_DIR) -> list[Path]:
    files = [go_dir / "train.tsv", go_dir / "dev.tsv"]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise SystemExit(f"triage: GoEmotions is part of the repository but {missing} is missing")
    return files


def main(argv: Sequence[str] | None = None) -> int:
    # One BLAS thread: a sum split across threads can round differently from run to run, and
    # the model must be the same every time (set before numpy is first imported).
    one_core()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="train even if the stamp matches")
    parser.add_argument("--architecture", choices=("ensemble", "bow"), default="ensemble")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cfg = TrainConfig(architecture=args.architecture, epochs=args.epochs)
    fan = fan_files()
    wanted = stamp([*fan, *goemotions_files()], cfg)
    if not args.force and current_stamp(args.out) == wanted:
        print(f"triage: model in {args.out} is up to date (stamp {wanted})")
        return 0
    started = time.monotonic()
    meta = train(args.out, fan=fan, cfg=cfg)
    print(f"triage: model written to {args.out} in {time.monotonic() - started:.0f}s "
          f"(stamp {meta['stamp']}, threshold {meta['threshold']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
