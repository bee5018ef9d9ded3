"""Triage benchmark on the labelled handoff set: ``python -m api.triage.bench [--model DIR]``.

Prints triage time per message (before_bot + after_bot, one core) p50/p99, safety-pattern
recall on the safety-labelled messages, handoff and topic accuracy, false handoffs on the
must-not-hand-off messages, and the GoEmotions dev evaluation line when the dataset is present.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from api.triage.evaluate import one_core


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: Sequence[str] | None = None) -> int:
    one_core()
    from api.triage.engine import Triage
    from api.triage.evalset import Case, load_cases, score
    from api.triage.evaluate import evaluation_line
    from api.triage.patterns import make_docs
    from api.triage.text import normalise
    from api.triage.train import DEFAULT_OUT, GOEMOTIONS_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rounds", type=int, default=5, help="timing passes over the set")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    triage = Triage.load(args.model)
    print(f"load: {time.perf_counter() - started:.2f}s (model {args.model})")
    cases = load_cases()

    def decide(case: Case):
        return triage.assess_and_decide(case.text, case.turns, case.parse, case.bot_items)

    def safety_topic(text: str):
        norm = normalise(text)
        return triage.safety.match(text, norm, make_docs(triage.pipelines, norm)).topic

    for case in cases[:20]:
        decide(case)  # warm-up
    timings: list[float] = []
    for _ in range(args.rounds):
        for case in cases:
            t0 = time.perf_counter()
            decide(case)
            timings.append((time.perf_counter() - t0) * 1000)
    out = score(cases, decide, safety_topic)
    p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
    print(f"triage ms/message: p50={p50:.3f} p99={p99:.3f}"
          f" mean={statistics.fmean(timings):.3f} ({len(timings)} timed, one core)")
    print(f"safety-pattern recall: {out.safety_recall:.4f} ({out.safety_hit}/{out.safety_total})")
    print(f"handoff accuracy: {out.accuracy:.4f}  topic accuracy: {out.topic_accuracy:.4f}"
          f" ({out.total} messages)")
    print(f"false handoffs on must-not: {len(out.false_handoffs)}/{out.must_not_total}"
          + (f" ({', '.join(out.false_handoffs)})" if out.false_handoffs else ""))
    if args.show_errors:
        for line in out.wrong:
            print("  wrong:", line)
    print(evaluation_line(GOEMOTIONS_DIR / "dev.tsv", args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
