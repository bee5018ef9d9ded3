"""scripts/evaluate_model.py and scripts/compare_models.py: the metrics, the comparison, the CLI.

The unit tests need no model. The `rasa` test scores the trained model (`make train`) with the
real held-out files, as the switchboard does after a retrain.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .conftest import ROOT

SCRIPTS = ROOT / "scripts"
PYTHON = ROOT / ".venv-bot" / "bin" / "python"


def load_script(name: str) -> ModuleType:
    """scripts/ is not a package: load the script by path."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


evaluate_model = load_script("evaluate_model")
compare_models = load_script("compare_models")


def parse(intent: str, confidence: float = 0.9) -> dict:
    return {"intent": {"name": intent, "confidence": confidence}}


def report(per_intent_f1: dict[str, float], messages: list[tuple[int, bool]] | None = None,
           accuracy: float = 0.9, oos_rate: float | None = 0.8,
           languages: dict[str, float] | None = None) -> dict:
    """A minimal evaluate_model report; ``languages``: accuracy by language code."""
    return {
        "model": "models/bot-x.tar.gz", "model_sha256": "ab", "nlu_file": "t.yml",
        "nlu_sha256": "cd", "seconds": 1.0,
        "nlu": {"examples": 10, "accuracy": accuracy, "macro_f1": 0.8, "weighted_f1": 0.85,
                "per_intent": {intent: {"precision": f1, "recall": f1, "f1": f1, "support": 5}
                               for intent, f1 in per_intent_f1.items()},
                "labels": sorted(per_intent_f1), "confusion": [], "errors": []},
        "languages": {code: {"file": f"t_{code}.yml", "sha256": "ef", "examples": 4,
                             "accuracy": value, "macro_f1": value - 0.05, "weighted_f1": value,
                             "intents": 2, "errors": []}
                      for code, value in (languages or {}).items()},
        "oos": None if oos_rate is None else {"examples": 10, "caught": 8, "rate": oos_rate},
        "conversations": {"stories": 3, "failed": 0, "failed_names": []},
        "messages": [{"id": id_, "text": "t", "expected": "greet",
                      "predicted": "greet" if correct else "goodbye", "confidence": 0.9,
                      "correct": correct} for id_, correct in (messages or [])],
    }


# --- evaluate_model: metrics -------------------------------------------------------------------


def test_intent_metrics_scores_fallback_as_wrong_and_keeps_it_in_the_confusion_matrix() -> None:
    gold = ["greet", "greet", "thanks", "thanks"]
    predicted = ["greet", "thanks", "thanks", "nlu_fallback"]
    metrics = evaluate_model.intent_metrics(gold, predicted)
    assert metrics["examples"] == 4
    assert metrics["accuracy"] == 0.5
    assert metrics["per_intent"] == {
        "greet": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "thanks": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
    }
    # Averaged over the intents of the test file, not over the predicted-only nlu_fallback.
    assert metrics["macro_f1"] == 0.5833
    assert metrics["weighted_f1"] == 0.5833
    assert metrics["labels"] == ["greet", "nlu_fallback", "thanks"]
    assert metrics["confusion"] == [[1, 0, 1], [0, 0, 0], [0, 1, 1]]


def test_intent_metrics_weights_by_support() -> None:
    gold = ["a", "a", "a", "b"]
    metrics = evaluate_model.intent_metrics(gold, ["a", "a", "a", "a"])
    assert metrics["per_intent"]["a"]["f1"] == 0.8571  # precision 3/4, recall 1
    assert metrics["per_intent"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                          "support": 1}
    assert metrics["macro_f1"] == round(0.857142857 / 2, 4)
    assert metrics["weighted_f1"] == round(0.857142857 * 3 / 4, 4)


def test_intent_metrics_of_nothing() -> None:
    metrics = evaluate_model.intent_metrics([], [])
    assert metrics["examples"] == 0 and metrics["confusion"] == []


def test_nlu_errors_lists_misclassified_examples_in_order() -> None:
    errors = evaluate_model.nlu_errors(
        ["hi", "ty", "bye"], ["greet", "thanks", "goodbye"],
        [parse("greet"), parse("nlu_fallback", 0.55), parse("greet", 0.612345)],
    )
    assert errors == [
        {"text": "ty", "expected": "thanks", "predicted": "nlu_fallback", "confidence": 0.55},
        {"text": "bye", "expected": "goodbye", "predicted": "greet", "confidence": 0.6123},
    ]


def test_oos_counts_out_of_scope_and_fallback_as_caught() -> None:
    summary = evaluate_model.oos_summary(["out_of_scope", "nlu_fallback", "greet"])
    assert summary == {"examples": 3, "caught": 2, "rate": 0.6667}
    assert evaluate_model.oos_summary([])["rate"] == 0.0


def test_message_results() -> None:
    messages = [{"id": 7, "text": "hiya", "expected": "greet"},
                {"id": 9, "text": "ta", "expected": "thanks"}]
    results = evaluate_model.message_results(messages, [parse("greet"), parse("nlu_fallback")])
    assert results == [
        {"id": 7, "text": "hiya", "expected": "greet", "predicted": "greet", "confidence": 0.9,
         "correct": True},
        {"id": 9, "text": "ta", "expected": "thanks", "predicted": "nlu_fallback",
         "confidence": 0.9, "correct": False},
    ]


def test_language_metrics_are_the_headline_figures_and_the_errors() -> None:
    figures = evaluate_model.language_metrics(
        ["hola", "gracias", "adiós", "qué tal"], ["greet", "thanks", "goodbye", "greet"],
        [parse("greet"), parse("thanks"), parse("nlu_fallback", 0.4), parse("greet")])
    assert figures == {
        "examples": 4, "accuracy": 0.75, "macro_f1": 0.6667, "weighted_f1": 0.75, "intents": 3,
        "errors": [{"text": "adiós", "expected": "goodbye", "predicted": "nlu_fallback",
                    "confidence": 0.4}],
    }


def test_language_files_default_to_the_held_out_files_that_exist() -> None:
    files = evaluate_model.language_files(None)
    assert list(files) == ["en", "es", "de"]
    assert files["en"] == ROOT / "tests" / "nlu" / "test_nlu.yml"
    assert files["es"].name == "test_nlu_es.yml" and files["de"].name == "test_nlu_de.yml"
    assert all(path.is_file() for path in files.values())


def test_language_files_from_the_command_line() -> None:
    files = evaluate_model.language_files(["ES=a.yml", "de = b.yml", "es=c.yml"])
    assert files == {"es": Path("c.yml"), "de": Path("b.yml")}  # a later option wins
    for bad in ("es", "spanish=a.yml", "es=", "=a.yml"):
        with pytest.raises(evaluate_model.UnusableInput):
            evaluate_model.language_files([bad])


def test_summary_line_names_overall_then_each_language() -> None:
    line = evaluate_model.summary_line(
        {"accuracy": 0.976, "macro_f1": 0.98712, "examples": 250},
        {"es": {"accuracy": 0.9, "macro_f1": 0.85, "examples": 283}})
    assert line == ("evaluate nlu accuracy=0.9760 macro_f1=0.9871 examples=250 | "
                    "es accuracy=0.9000 macro_f1=0.8500 examples=283")


def test_missing_language_file_exits_2_before_loading_the_model(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"")
    code = evaluate_model.main(["--model", str(model), "--out", str(tmp_path / "out"),
                                "--language", f"es={tmp_path / 'none.yml'}"])
    assert code == 2
    assert "NLU file for language es not found" in capsys.readouterr().err


@pytest.mark.parametrize("data", [
    {"id": 1}, [{"id": "1", "text": "t", "expected": "e"}], [{"id": True, "text": "t",
                                                             "expected": "e"}],
    [{"id": 1, "text": "t"}],
])
def test_validate_messages_rejects_other_shapes(data) -> None:
    with pytest.raises(evaluate_model.UnusableInput):
        evaluate_model.validate_messages(data)


def test_missing_model_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    code = evaluate_model.main(["--model", str(tmp_path / "none.tar.gz"),
                                "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model not found" in err
    assert not (tmp_path / "out" / "report.json").exists()


def test_unreadable_messages_exit_2(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"")
    messages = tmp_path / "messages.json"
    messages.write_text("{not json")
    code = evaluate_model.main(["--model", str(model), "--out", str(tmp_path / "out"),
                                "--messages", str(messages)])
    assert code == 2 and "cannot read messages" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # matplotlib 3.5 on new pyparsing
def test_confusion_plot_is_written(tmp_path: Path) -> None:
    labels = [f"intent_{index}" for index in range(45)]
    confusion = [[5 if row == col else int(col == row + 1) for col in range(45)]
                 for row in range(45)]
    evaluate_model.plot_confusion(labels, confusion, tmp_path / "confusion.png", "title")
    assert (tmp_path / "confusion.png").read_bytes().startswith(b"\x89PNG")


# --- compare_models ----------------------------------------------------------------------------


def test_per_intent_deltas_with_null_for_one_sided_intents() -> None:
    rows = compare_models.per_intent_deltas(report({"greet": 0.9, "old": 0.5}),
                                            report({"greet": 0.8, "new": 1.0}))
    assert rows == [
        {"intent": "greet", "active_f1": 0.9, "candidate_f1": 0.8, "delta": -0.1},
        {"intent": "new", "active_f1": None, "candidate_f1": 1.0, "delta": None},
        {"intent": "old", "active_f1": 0.5, "candidate_f1": None, "delta": None},
    ]
    assert [row["intent"] for row in compare_models.plot_order(rows + [
        {"intent": "bye", "active_f1": 0.5, "candidate_f1": 0.7, "delta": 0.2}])] == [
        "greet", "bye", "new", "old"]


def test_message_changes_match_by_id() -> None:
    active = report({}, messages=[(1, False), (2, False), (3, True), (4, True)])
    candidate = report({}, messages=[(1, True), (2, False), (3, False), (5, True)])
    assert compare_models.message_changes(active, candidate) == {
        "newly_correct_messages": [1], "still_wrong_messages": [2]}


def test_summary_nulls_missing_parts() -> None:
    summary = compare_models.summarize({**report({"greet": 1.0}, oos_rate=None),
                                        "conversations": None})
    assert summary["oos_rate"] is None and summary["conversations_failed"] is None
    assert summary["accuracy"] == 0.9 and summary["messages_total"] == 0
    assert summary["languages"] == {}


def test_per_language_side_by_side_in_the_bot_s_order() -> None:
    active = report({}, languages={"de": 0.5, "es": 0.8, "en": 0.9, "fr": 0.7})
    candidate = report({}, languages={"en": 0.95, "es": 0.75, "de": 0.5, "it": 0.6})
    rows = compare_models.per_language(active, candidate)
    assert [row["language"] for row in rows] == ["en", "es", "de", "fr", "it"]
    assert rows[1] == {"language": "es", "examples": 4,
                       "active_accuracy": 0.8, "candidate_accuracy": 0.75,
                       "accuracy_delta": -0.05, "active_macro_f1": 0.75,
                       "candidate_macro_f1": 0.7, "macro_f1_delta": -0.05}
    assert rows[2]["accuracy_delta"] == 0.0
    assert rows[3]["candidate_accuracy"] is None and rows[3]["accuracy_delta"] is None
    assert rows[4]["active_accuracy"] is None and rows[4]["candidate_accuracy"] == 0.6
    assert compare_models.summarize(candidate)["languages"]["es"] == {
        "examples": 4, "accuracy": 0.75, "macro_f1": 0.7}
    lines = compare_models.language_lines(rows)
    assert lines[1] == ("language es examples=4 accuracy active=0.8000 candidate=0.7500 "
                        "delta=-0.0500 macro_f1 active=0.7500 candidate=0.7000")
    assert "active=n/a" in lines[4]
    # A report from before languages were scored compares with nulls, not an error.
    assert compare_models.per_language(report({}), report({})) == []
    assert [row["active_accuracy"] for row in
            compare_models.per_language(report({}), candidate)] == [None] * 4


def test_gate_summary_ignores_the_language_figures() -> None:
    """The registry's gate (api/registry/gate.py, pure, no pydantic) reads a report with
    languages exactly as one without."""
    spec = importlib.util.spec_from_file_location("registry_gate",
                                                  ROOT / "api" / "registry" / "gate.py")
    gate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gate
    spec.loader.exec_module(gate)
    with_languages = report({"greet": 0.9}, languages={"es": 0.5, "de": 0.1})
    assert gate.summarise(with_languages) == gate.summarise(report({"greet": 0.9}))
    summary = gate.summarise(with_languages)
    assert gate.judge(summary, summary, gate.GatePolicy()).passed


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # matplotlib 3.5 on new pyparsing
def test_compare_cli_writes_json_and_plots(tmp_path: Path, capsys) -> None:
    active_path, candidate_path = tmp_path / "a.json", tmp_path / "b.json"
    active_path.write_text(json.dumps(report({"greet": 0.9, "thanks": 0.7}, [(1, False)],
                                             languages={"en": 0.9, "es": 0.8})))
    candidate_path.write_text(json.dumps(report({"greet": 0.95, "thanks": 0.6}, [(1, True)],
                                                oos_rate=None,
                                                languages={"en": 0.9, "es": 0.85, "de": 0.7})))
    out = tmp_path / "out"
    assert compare_models.main(["--active", str(active_path), "--candidate",
                                str(candidate_path), "--out", str(out)]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison) == {"active", "candidate", "per_intent", "per_language",
                               "newly_correct_messages", "still_wrong_messages"}
    assert [(row["language"], row["active_accuracy"], row["candidate_accuracy"])
            for row in comparison["per_language"]] == [
        ("en", 0.9, 0.9), ("es", 0.8, 0.85), ("de", None, 0.7)]
    assert comparison["candidate"]["languages"]["de"]["accuracy"] == 0.7
    assert "language es examples=4 accuracy active=0.8000 candidate=0.8500" in \
        capsys.readouterr().out
    assert comparison["newly_correct_messages"] == [1]
    assert comparison["candidate"]["oos_rate"] is None
    for name in ("per_intent_f1.png", "summary.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")


def test_compare_rejects_a_file_that_is_not_a_report(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text("[]")
    assert compare_models.main(["--active", str(bogus), "--candidate", str(bogus),
                                "--out", str(tmp_path)]) == 2
    assert "not a report" in capsys.readouterr().err


# --- the trained model -------------------------------------------------------------------------


def trained_model() -> Path:
    sys.path.insert(0, str(SCRIPTS))
    import bot_model

    model = bot_model.model_path()
    if not model.exists():
        pytest.fail(f"no trained model at {model}: run `make train` first")
    return model


def count_examples(path: Path) -> int:
    return sum(len([line for line in block["examples"].splitlines()
                    if line.strip().startswith("- ")])
               for block in yaml.safe_load(path.read_text())["nlu"] if "intent" in block)


def count_stories(folder: Path) -> int:
    return sum(len(yaml.safe_load(path.read_text())["stories"])
               for path in folder.glob("test_*.yml"))


@pytest.mark.rasa
def test_scores_the_trained_model(tmp_path: Path) -> None:
    model = trained_model()
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps([
        {"id": 1, "text": "hiya 👋", "expected": "greet"},
        {"id": 2, "text": "can i talk to a real person", "expected": "request_human"},
    ]))
    out = tmp_path / "candidate"
    result = subprocess.run(
        [str(PYTHON), str(SCRIPTS / "evaluate_model.py"), "--model", str(model), "--out",
         str(out), "--nlu", "tests/nlu/test_nlu.yml", "--oos", "tests/nlu/out_of_scope.yml",
         "--stories", "tests/conversations", "--messages", str(messages), "--progress"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("progress ")]
    assert progress[0] == "progress evaluate 0 load"
    assert progress[-1] == "progress evaluate 100 done"

    report_ = json.loads((out / "report.json").read_text())
    assert set(report_) == {"model", "model_sha256", "nlu_file", "nlu_sha256", "seconds", "nlu",
                            "languages", "oos", "conversations", "messages"}
    assert report_["model"] == str(model) and len(report_["model_sha256"]) == 64
    nlu = report_["nlu"]
    assert nlu["examples"] == sum(item["support"] for item in nlu["per_intent"].values())
    assert len(nlu["confusion"]) == len(nlu["labels"])
    assert all(len(row) == len(nlu["labels"]) for row in nlu["confusion"])
    assert sum(map(sum, nlu["confusion"])) == nlu["examples"]
    assert len(nlu["errors"]) == nlu["examples"] - sum(
        nlu["confusion"][i][i] for i in range(len(nlu["labels"])))
    assert nlu["accuracy"] >= 0.9, nlu["errors"]
    assert report_["oos"]["examples"] > 0
    # Every language's held-out file, scored like the overall file (English is that file).
    languages = report_["languages"]
    assert list(languages) == ["en", "es", "de"]
    for code, name in (("en", "test_nlu.yml"), ("es", "test_nlu_es.yml"),
                       ("de", "test_nlu_de.yml")):
        figures = languages[code]
        assert figures["file"] == f"tests/nlu/{name}"
        assert figures["examples"] == count_examples(ROOT / "tests" / "nlu" / name)
        assert 0 <= figures["macro_f1"] <= 1 and len(figures["sha256"]) == 64
        assert len(figures["errors"]) == round(figures["examples"] * (1 - figures["accuracy"]))
    assert {key: languages["en"][key] for key in ("examples", "accuracy", "macro_f1")} == \
        {key: nlu[key] for key in ("examples", "accuracy", "macro_f1")}
    assert languages["es"]["accuracy"] >= 0.8, languages["es"]["errors"]
    summary = [line for line in result.stdout.splitlines() if line.startswith("evaluate ")]
    assert len(summary) == 1 and " | es accuracy=" in summary[0] and " | de accuracy=" in \
        summary[0]
    conversations = report_["conversations"]
    assert conversations["stories"] == count_stories(ROOT / "tests" / "conversations")
    assert conversations["failed"] == 0, conversations["failed_names"]
    assert [message["id"] for message in report_["messages"]] == [1, 2]
    for message in report_["messages"]:
        assert isinstance(message["predicted"], str) and 0 <= message["confidence"] <= 1
        assert message["correct"] == (message["predicted"] == message["expected"])
    assert (out / "confusion.png").read_bytes().startswith(b"\x89PNG")

    # The switchboard's next step, here with the same report on both sides.
    compared = subprocess.run(
        [str(PYTHON), str(SCRIPTS / "compare_models.py"), "--active", str(out / "report.json"),
         "--candidate", str(out / "report.json"), "--out", str(tmp_path / "compare")],
        capture_output=True, text=True, timeout=120,
    )
    assert compared.returncode == 0, compared.stderr
    comparison = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert all(row["delta"] == 0 for row in comparison["per_intent"])
    assert [row["language"] for row in comparison["per_language"]] == ["en", "es", "de"]
    assert all(row["accuracy_delta"] == 0 for row in comparison["per_language"])
