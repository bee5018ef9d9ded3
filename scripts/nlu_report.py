"""Summarise Rasa's intent_report.json; optionally fail under a minimum accuracy.

    python3 scripts/nlu_report.py var/results/nlu/intent_report.json --min-accuracy 0.95
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--min-accuracy", type=float, default=None)
    args = parser.parse_args()
    with open(args.report) as handle:
        report = json.load(handle)
    accuracy = report["accuracy"]
    macro_f1 = report["macro avg"]["f1-score"]
    weakest = sorted(
        (name, scores["f1-score"]) for name, scores in report.items()
        if isinstance(scores, dict) and "f1-score" in scores and not name.endswith("avg")
    )
    weakest.sort(key=lambda item: item[1])
    print(f"intent accuracy={accuracy:.4f} macro_f1={macro_f1:.4f}")
    print("weakest intents: " + ", ".join(f"{name} {f1:.2f}" for name, f1 in weakest[:5]))
    if args.min_accuracy is not None and accuracy < args.min_accuracy:
        print(f"FAIL: intent accuracy {accuracy:.4f} is under {args.min_accuracy}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
