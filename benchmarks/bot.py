"""Measure the bot: training time, memory, turn latency and throughput, NLU quality, fallback.

    make bench-bot            # everything below, against the model for the current data
    .venv-bot/bin/python -m benchmarks.bot --skip-train --skip-crossval   # the quick part

Steps (each printed as it finishes, all collected in --out as JSON):
1. training time of the full model from scratch (`rasa train --force` into a temporary folder);
2. the Rasa server's resident memory once the model is loaded (and the action server's);
3. latency of one bot turn through `POST /webhooks/rest/webhook` (p50/p99 over >= 300 messages
   drawn from tests/nlu/test_nlu.yml) and sequential throughput;
4. intent accuracy and macro-F1 on the held-out file, and the fallback rate on the out-of-scope
   messages in tests/nlu/out_of_scope.yml (fallback = `nlu_fallback` or `out_of_scope`);
5. the FallbackClassifier threshold sweep on 5-fold cross-validation predictions of the
   *training* data (never the held-out files), which is how config.yml's threshold was chosen.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.rasa_servers import bot_model, start_bot_servers  # noqa: E402

RASA = str(ROOT / ".venv-bot" / "bin" / "rasa")
FALLBACK = {"nlu_fallback", "out_of_scope"}


def load_examples(path: Path) -> list[tuple[str, str]]:
    data = yaml.safe_load(path.read_text())
    rows = []
    for block in data["nlu"]:
        for line in block["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                rows.append((line[2:].strip(), block["intent"]))
    return rows


def post_json(url: str, body: dict) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    labels = {gold for gold, _ in pairs}
    scores = []
    for label in labels:
        tp = sum(1 for gold, pred in pairs if gold == label and pred == label)
        fp = sum(1 for gold, pred in pairs if gold != label and pred == label)
        fn = sum(1 for gold, pred in pairs if gold == label and pred != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores)


def measure_training() -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = [str(p.relative_to(ROOT)) for p in bot_model.rasa_data_dirs()]
    started = time.monotonic()
    subprocess.run([RASA, "train", "--force", "--quiet", "--config", "config.yml",
                    "--domain", "domain.yml", "--data", *data, "--out", str(out)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    shutil.rmtree(out, ignore_errors=True)
    return {"train_seconds": round(seconds, 1)}


def measure_servers(turns: int) -> dict:
    heldout = load_examples(ROOT / "tests" / "nlu" / "test_nlu.yml")
    oos = load_examples(ROOT / "tests" / "nlu" / "out_of_scope.yml")
    results: dict = {}
    with start_bot_servers() as bot:
        time.sleep(2)
        results["rasa_rss_mb"] = round(rss_mb(bot.rasa_pid), 0)
        results["actions_rss_mb"] = round(rss_mb(bot.actions_pid), 0)

        parse_url = f"{bot.rasa_url}/model/parse?token={bot.token}"
        pairs = []
        for text, gold in heldout:
            predicted = post_json(parse_url, {"text": text})["intent"]["name"]
            pairs.append((gold, predicted))
        results["heldout_messages"] = len(pairs)
        results["intent_accuracy"] = round(sum(g == p for g, p in pairs) / len(pairs), 4)
        results["intent_macro_f1"] = round(macro_f1(pairs), 4)
        results["heldout_misses"] = [f"{g} -> {p}" for g, p in pairs if g != p]
        oos_predictions = [post_json(parse_url, {"text": text})["intent"]["name"]
                           for text, _ in oos]
        results["oos_messages"] = len(oos_predictions)
        results["oos_fallback_rate"] = round(
            sum(p in FALLBACK for p in oos_predictions) / len(oos_predictions), 4)
        results["oos_wrongly_answered_as"] = dict(
            Counter(p for p in oos_predictions if p not in FALLBACK).most_common())

        rng = random.Random(7)
        messages = [text for text, _ in heldout]
        sample = [rng.choice(messages) for _ in range(turns)]
        webhook = f"{bot.rasa_url}/webhooks/rest/webhook"
        for index in range(10):  # warm up
            post_json(webhook, {"sender": f"warmup-{index}", "message": sample[index]})
        latencies = []
        started = time.monotonic()
        for index, text in enumerate(sample):
            began = time.perf_counter()
            post_json(webhook, {"sender": f"bench-{index % 25}", "message": text})
            latencies.append((time.perf_counter() - began) * 1000)
        elapsed = time.monotonic() - started
        results["turns"] = turns
        results["turn_p50_ms"] = round(statistics.median(latencies), 1)
        results["turn_p99_ms"] = round(percentile(latencies, 99), 1)
        results["sequential_turns_per_second"] = round(turns / elapsed, 1)
    return results


def crossval_sweep() -> dict:
    """5-fold CV on the training data with the FallbackClassifier removed, then a sweep."""
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    fallback = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    config["pipeline"] = [c for c in config["pipeline"] if c["name"] != "FallbackClassifier"]
    work = ROOT / "var" / "results" / "crossval-raw"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "config.yml").write_text(yaml.safe_dump(config))
    started = time.monotonic()
    subprocess.run([RASA, "test", "nlu", "--nlu", "data/nlu", "--config", str(work / "config.yml"),
                    "--cross-validation", "--folds", "5", "--successes",
                    "--out", str(work / "out")],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    rows = []
    for name in ("intent_successes.json", "intent_errors.json"):
        path = work / "out" / name
        if path.exists():
            rows += json.loads(path.read_text())
    sweep = []
    for threshold in (0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8):
        in_scope = [r for r in rows if r["intent"] != "out_of_scope"]
        oos = [r for r in rows if r["intent"] == "out_of_scope"]
        correct = sum(1 for r in in_scope if r["intent_prediction"]["name"] == r["intent"]
                      and r["intent_prediction"]["confidence"] >= threshold)
        caught = sum(1 for r in oos if r["intent_prediction"]["confidence"] < threshold
                     or r["intent_prediction"]["name"] == "out_of_scope")
        sweep.append({"threshold": threshold,
                      "in_scope_accuracy": round(correct / len(in_scope), 4),
                      "oos_caught": round(caught / len(oos), 4) if oos else None})
    report = json.loads((work / "out" / "intent_report.json").read_text())
    return {"crossval_seconds": round(seconds, 1), "configured_threshold": fallback["threshold"],
            "crossval_rows": len(rows), "crossval_rasa_accuracy": report.get("accuracy"),
            "threshold_sweep": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure the bot")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-bot.json")
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-crossval", action="store_true")
    parser.add_argument("--skip-servers", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Steps can be re-run on their own: earlier results in --out are kept and updated.
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update({"model": bot_model.model_path().name, "cpus": os.cpu_count()})
    if not args.skip_train:
        results.update(measure_training())
        print(f"training from scratch: {results['train_seconds']} s", flush=True)
    if not args.skip_servers:
        results.update(measure_servers(args.turns))
    print(json.dumps({k: v for k, v in results.items() if "misses" not in k}, indent=1),
          flush=True)
    if not args.skip_crossval:
        results.update(crossval_sweep())
        print(json.dumps(results["threshold_sweep"], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
