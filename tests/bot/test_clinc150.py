"""The CLINC150 benchmark's scoring, threshold choice and result line (no training), plus one
small end-to-end run on synthetic data (marked `rasa`)."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.clinc150 import (
    FALLBACK_INTENT,
    MODEL_DIR,
    OOS,
    ROOT,
    BenchError,
    Prediction,
    apply_threshold,
    choose_threshold,
    load_clinc,
    main,
    parse_result_line,
    pipeline_config,
    result_line,
    score,
    stratified_folds,
)

SHARED_CLINC = (Path(os.environ.get("DATASETS_DIR") or ROOT.parent / "shared" / "datasets")
                / "clinc150" / "clinc150_train_val.json")


def write_clinc(path: Path, **splits: list[list[str]]) -> Path:
    path.write_text(json.dumps(splits))
    return path


def test_score_counts_a_fallback_on_an_in_scope_message_as_wrong() -> None:
    golds = ["greet", "greet", "bye", OOS, OOS, OOS, OOS]
    predicted = ["greet", FALLBACK_INTENT, "greet", OOS, FALLBACK_INTENT, "bye", "greet"]
    figures = score(golds, predicted)
    assert figures["in_scope"] == 3 and figures["oos"] == 4
    assert figures["in_scope_accuracy"] == pytest.approx(100 / 3)
    assert figures["oos_recall"] == pytest.approx(50.0)


def test_apply_threshold_falls_back_below_it_only() -> None:
    predictions = [Prediction("greet", 0.2), Prediction("bye", 0.5), Prediction(OOS, 0.9)]
    assert apply_threshold(predictions, 0.5) == [FALLBACK_INTENT, "bye", OOS]
    assert apply_threshold(predictions, 0.0) == ["greet", "bye", OOS]


def test_choose_threshold_buys_oos_recall_within_the_in_scope_budget() -> None:
    # 100 in-scope messages, all right: 90 confident (0.9), 10 unsure (0.3).
    # 10 out-of-scope messages misread at 0.2 and 10 at 0.6.
    golds = ["greet"] * 100 + [OOS] * 20
    predictions = ([Prediction("greet", 0.9)] * 90 + [Prediction("greet", 0.3)] * 10
                   + [Prediction("bye", 0.2)] * 10 + [Prediction("bye", 0.6)] * 10)
    # Catching the 0.2 ones costs nothing; the 0.6 ones would cost 10 points.
    threshold, sweep = choose_threshold(golds, predictions, max_in_scope_drop=1.0)
    assert threshold == 0.21
    assert len(sweep) == 100 and sweep[0]["threshold"] == 0.0
    # With a 10-point budget the unsure in-scope messages may go too.
    threshold, _ = choose_threshold(golds, predictions, max_in_scope_drop=10.0)
    assert threshold == 0.61


def test_stratified_folds_spread_every_intent_evenly() -> None:
    intents = ["a"] * 10 + ["b"] * 5 + ["c"] * 23
    assignment = stratified_folds(intents, 5)
    for intent in "abc":
        counts = Counter(f for i, f in zip(intents, assignment, strict=True) if i == intent)
        assert max(counts.values()) - min(counts.values()) <= 1
    assert stratified_folds(intents, 5) == assignment  # seeded


def test_result_line_is_the_documented_format_and_parses_back() -> None:
    line = result_line("test", 93.2149, 71.45, 511.6)
    assert line == "clinc150 split=test in_scope_accuracy=93.2 oos_recall=71.5 train_seconds=512"
    assert parse_result_line(line) == {"split": "test", "in_scope_accuracy": 93.2,
                                       "oos_recall": 71.5, "train_seconds": 512}
    with pytest.raises(ValueError):
        parse_result_line("clinc150 split=val in_scope_accuracy=0.93 oos_recall=0.7")


def test_load_clinc_scores_split_plus_oos_split(tmp_path: Path) -> None:
    path = write_clinc(tmp_path / "c.json", train=[["hi", "greet"]], oos_train=[["x", OOS]],
                       test=[["hello", "greet"]], oos_test=[["y", OOS], ["z", OOS]])
    train, scored = load_clinc(path, "test")
    assert train == [("hi", "greet"), ("x", OOS)]
    assert scored == [("hello", "greet"), ("y", OOS), ("z", OOS)]
    with pytest.raises(BenchError, match="oos_val"):
        load_clinc(path, "val")


def test_a_missing_file_exits_non_zero_naming_the_path_and_the_variables(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "clinc150.json"
    assert main(["--clinc", str(missing), "--split", "val"]) != 0
    error = capsys.readouterr().err
    assert str(missing) in error and "CLINC=" in error and "DATASETS_DIR" in error


def test_pipeline_config_swaps_in_the_tuned_fallback() -> None:
    config = {"recipe": "default.v1", "language": "en", "policies": [{"name": "RulePolicy"}],
              "pipeline": [{"name": "WhitespaceTokenizer"},
                           {"name": "DIETClassifier", "epochs": 100},
                           {"name": "FallbackClassifier", "threshold": 0.55}]}
    raw = pipeline_config(config, None, diet_epochs=5)
    assert [c["name"] for c in raw["pipeline"]] == ["WhitespaceTokenizer", "DIETClassifier"]
    assert raw["pipeline"][1]["epochs"] == 5 and "policies" not in raw
    tuned = pipeline_config(config, 0.31)
    assert tuned["pipeline"][-1] == {"name": "FallbackClassifier", "threshold": 0.31,
                                     "ambiguity_threshold": 0.0}
    assert config["pipeline"][1]["epochs"] == 100  # the caller's config is left alone


def test_the_shared_dataset_has_the_keys_the_benchmark_reads() -> None:
    if not SHARED_CLINC.is_file():
        pytest.skip(f"CLINC150 not found at {SHARED_CLINC}")
    train, scored = load_clinc(SHARED_CLINC, "val")
    assert len({intent for _, intent in train}) == 151  # 150 intents + oos
    assert sum(intent == OOS for _, intent in scored) > 0


@pytest.mark.rasa
def test_a_tiny_synthetic_benchmark_trains_and_prints_the_result_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(1)
    topics = {"weather": ["rain", "sunny", "forecast", "snow"],
              "music": ["song", "playlist", "album", "band"],
              "food": ["pizza", "recipe", "dinner", "lunch"],
              OOS: ["quantum", "volcano", "tax", "galaxy"]}

    def rows(count: int) -> dict[str, list[list[str]]]:
        made: dict[str, list[list[str]]] = {"in": [], "oos": []}
        for intent, words in topics.items():
            for _ in range(count):
                text = f"tell me about the {rng.choice(words)} {rng.choice(words)} please"
                made["oos" if intent == OOS else "in"].append([text, intent])
        return made

    train, val = rows(20), rows(5)
    path = write_clinc(tmp_path / "tiny.json", train=train["in"], oos_train=train["oos"],
                       tiny=val["in"], oos_tiny=val["oos"])
    config = tmp_path / "tiny_lr.yml"
    config.write_text("recipe: default.v1\nlanguage: en\npipeline:\n"
                      "  - name: WhitespaceTokenizer\n  - name: CountVectorsFeaturizer\n"
                      "  - name: LogisticRegressionClassifier\n")
    assert main(["--clinc", str(path), "--split", "tiny", "--config", str(config),
                 "--folds", "2", "--tune-folds", "1", "--out", str(tmp_path / "out")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = parse_result_line(last)
    assert figures["split"] == "tiny" and figures["in_scope_accuracy"] >= 80
    model = MODEL_DIR / "clinc150-tiny_lr-tiny.tar.gz"
    assert model.is_file()
    model.unlink()
