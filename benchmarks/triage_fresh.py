"""Triage on fresh sets and ordinary traffic: ``python -m benchmarks.triage_fresh`` (switchboard
environment; ``make bench-triage-fresh``).

- Fresh sets (``tests/triage/fresh/set*.toml``), each written by someone who never saw the
  training data: urgent recall (handed off as urgent) and topic fit, "needs a person" recall,
  false urgent handoffs and any handoffs on hard negatives, handoffs on routine questions.
- Ordinary traffic: the bot's held-out NLU files and out-of-scope set, and CLINC150's in-scope
  texts as a stand-in for chatter when ``$DATASETS_DIR`` has them: false urgent handoffs and
  handoffs of any kind.
- Cost per message on one core: the pattern layers (before the bot), the semantic layer (run
  while Rasa answers), both.

Each message is judged on its own, as a first message (no history, no bot parse): triggers that
need the bot's answer (repeated fallback, the bot's own request) are not in play.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
FRESH_DIR = ROOT / "tests" / "triage" / "fresh"
ORDINARY = (ROOT / "tests" / "nlu" / "test_nlu.yml", ROOT / "tests" / "nlu" / "test_nlu_es.yml",
            ROOT / "tests" / "nlu" / "test_nlu_de.yml", ROOT / "tests" / "nlu" / "out_of_scope.yml")
URGENT_TOPICS = frozenset({"lost_person", "medical", "safety", "harassment"})


@dataclass(frozen=True)
class Case:
    id: str
    lang: str
    kind: str  # urgent | person | negative | routine
    text: str
    topic: str | None = None


def load_set(path: Path) -> list[Case]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Case(c["id"], c.get("lang", ""), c["kind"], c["text"], c.get("topic"))
            for c in data["cases"]]


def nlu_texts(path: Path) -> list[str]:
    """Example texts of a Rasa NLU YAML file, entity markup removed."""
    import yaml

    texts: list[str] = []
    for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
        for line in (block.get("examples") or "").splitlines():
            if line.strip().startswith("- "):
                texts.append(re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line.strip()[2:].strip()))
    return texts


def clinc_in_scope() -> tuple[str, list[str]]:
    datasets = os.environ.get("DATASETS_DIR")
    path = Path(datasets) / "clinc150" / "clinc150_train_val.json" if datasets else None
    if path is None or not path.is_file():
        return f"CLINC150 not found ({path or 'DATASETS_DIR unset'})", []
    data = json.loads(path.read_text())
    return "CLINC150 val in-scope", [text for text, _ in data["val"]]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def score_set(triage, cases: Sequence[Case]) -> dict:
    by_kind: dict[str, list] = defaultdict(list)
    misses: list[str] = []
    for case in cases:
        d = triage.assess_and_decide(case.text)
        urgent = d.handoff and d.priority is not None and d.priority.value == "urgent"
        by_kind[case.kind].append((case, d, urgent))
        wrong = ((case.kind == "urgent" and not urgent)
                 or (case.kind == "person" and not d.handoff)
                 or (case.kind in ("negative", "routine") and d.handoff))
        if wrong:
            misses.append(f"{case.id} [{case.kind}/{case.lang}] -> "
                          f"{d.topic if d.handoff else 'bot'}")
    out: dict = {"misses": misses}
    urgent = by_kind["urgent"]
    if urgent:
        hit = [u for _, _, u in urgent]
        fit = [u and (d.topic == c.topic or d.topic in URGENT_TOPICS) for c, d, u in urgent]
        exact = [u and d.topic == c.topic for c, d, u in urgent]
        out["urgent_recall"] = (sum(hit), len(hit))
        out["urgent_fitting_topic"] = (sum(fit), len(fit))
        out["urgent_exact_topic"] = (sum(exact), len(exact))
        langs = Counter(c.lang for c, _, _ in urgent)
        out["urgent_by_lang"] = {lang: (sum(u for c, _, u in urgent if c.lang == lang), n)
                                 for lang, n in sorted(langs.items())}
    person = by_kind["person"]
    if person:
        out["person_recall"] = (sum(d.handoff for _, d, _ in person), len(person))
        out["person_topic"] = (sum(d.handoff and d.topic == c.topic for c, d, _ in person),
                               len(person))
    for kind in ("negative", "routine"):
        rows = by_kind[kind]
        if rows:
            out[f"{kind}_false_urgent"] = (sum(u for _, _, u in rows), len(rows))
            out[f"{kind}_any_handoff"] = (sum(d.handoff for _, d, _ in rows), len(rows))
    return out


def ordinary(triage, name: str, texts: Sequence[str]) -> str:
    urgent = handed = 0
    for text in texts:
        d = triage.assess_and_decide(text)
        handed += d.handoff
        urgent += d.handoff and d.priority is not None and d.priority.value == "urgent"
    n = max(1, len(texts))
    return (f"{name}: {len(texts)} messages, false urgent {urgent} ({urgent / n:.2%}), "
            f"handoffs of any kind {handed} ({handed / n:.2%})")


def fraction(pair: tuple[int, int]) -> str:
    hit, n = pair
    return f"{hit}/{n} ({hit / n:.3f})" if n else "0/0"


def main(argv: Sequence[str] | None = None) -> int:
    from api.triage.evaluate import one_core

    one_core()
    from api.triage.engine import Triage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path, help="fresh sets (default: all)")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--no-ordinary", action="store_true")
    args = parser.parse_args(argv)
    triage = Triage.load()
    print(f"semantic model {triage.semantic.stamp}, emotion model {triage.model.meta.stamp}")
    for path in args.sets or sorted(FRESH_DIR.glob("set*.toml")):
        result = score_set(triage, load_set(path))
        print(f"== {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        for key, value in result.items():
            if key == "misses":
                continue
            if key == "urgent_by_lang":
                print("  urgent recall by language: " + ", ".join(
                    f"{lang} {fraction(v)}" for lang, v in value.items()))
            else:
                print(f"  {key.replace('_', ' ')}: {fraction(value)}")
        if args.show_misses:
            for line in result["misses"]:
                print("   miss:", line)
    if not args.no_ordinary:
        for path in ORDINARY:
            if path.is_file():
                print(ordinary(triage, str(path.relative_to(ROOT)), nlu_texts(path)))
        name, texts = clinc_in_scope()
        print(ordinary(triage, name, texts) if texts else f"{name}: skipped")
    sample = [c.text for p in sorted(FRESH_DIR.glob("set*.toml")) for c in load_set(p)][:300]
    sample = sample or nlu_texts(ORDINARY[0])[:300]
    timings: dict[str, list[float]] = {"patterns (before the bot)": [],
                                       "semantic (while Rasa answers)": [], "both": []}
    for text in sample[:20]:
        triage.assess_and_decide(text)  # warm-up
    for text in sample:
        t0 = time.perf_counter()
        triage.before_bot(text, meaning=False)
        t1 = time.perf_counter()
        triage.meaning(text)
        t2 = time.perf_counter()
        timings["patterns (before the bot)"].append((t1 - t0) * 1000)
        timings["semantic (while Rasa answers)"].append((t2 - t1) * 1000)
        timings["both"].append((t2 - t0) * 1000)
    for name, values in timings.items():
        print(f"triage ms/message {name}: p50={percentile(values, 0.5):.2f} "
              f"p99={percentile(values, 0.99):.2f} mean={statistics.fmean(values):.2f} "
              f"({len(values)} messages, one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
