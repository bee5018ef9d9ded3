"""What fans feel while an operator activates a model: bot turns before vs during ``PUT /model``.

    python -m benchmarks.activation [--fans 3] [--steady-s 20] [--after-s 15] [--rounds 3]

Starts the real Rasa and action servers with the model of the current data (`make train`),
keeps ``fans`` fans asking questions over Rasa's REST channel, measures ``steady-s`` seconds of
normal turns, then swaps the running server to another archive of the same model (so only the
swap itself is measured, not a different model) ``rounds`` times each way — Rasa's own ``PUT
/model``, then the switchboard channel's threaded swap — measuring ``after-s`` seconds after
each. 127.0.0.1 only; stops by itself; writes var/bench-activation.json. The last line is a
one-line summary, steady turns and both swaps side by side (medians of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.common import pct

# The two ways to swap: Rasa's own endpoint, and the switchboard channel's (bot/channels.py).
SWAP_URLS = {"rasa_put_model": "/model", "channel_swap": "/webhooks/switchboard/model"}
QUESTIONS = ("what time do you open?", "how much are tickets?", "what's the dress code?",
             "is there a cloakroom?")


def repack(model: Path, target: Path) -> Path:
    with gzip.open(model, "rb") as src, open(target, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=1) as dst:
        shutil.copyfileobj(src, dst)
    return target


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"turns": 0}
    return {"turns": len(values), "p50_ms": round(pct(values, 0.5) * 1000, 1),
            "p99_ms": round(pct(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
            "over_1s": sum(1 for v in values if v > 1.0)}


async def measure(rasa_url: str, token: str, archives: tuple[Path, Path], fans: int,
                  steady_s: float, after_s: float, rounds: int) -> dict:
    """Steady turns, then ``rounds`` rounds of both swaps, alternating between two archives of
    the same model (``after_s`` of turns after each swap). Per method: the median of the rounds."""
    turns: list[tuple[float, float, bool]] = []  # (started, seconds, ok)
    stop = asyncio.Event()
    swaps: dict[str, list[tuple[float, float]]] = {name: [] for name in SWAP_URLS}
    async with httpx.AsyncClient(timeout=120) as http:

        async def fan(i: int) -> None:
            k, sender = 0, ""
            while not stop.is_set():
                if k % len(QUESTIONS) == 0:
                    sender = f"activation-{i}-{uuid.uuid4().hex[:6]}"
                started = time.perf_counter()
                try:
                    r = await http.post(f"{rasa_url}/webhooks/rest/webhook",
                                        json={"sender": sender,
                                              "message": QUESTIONS[k % len(QUESTIONS)]})
                    ok = r.status_code == 200 and any(m.get("text") for m in r.json())
                except httpx.HTTPError:
                    ok = False
                turns.append((started, time.perf_counter() - started, ok))
                k += 1

        workers = [asyncio.create_task(fan(i)) for i in range(fans)]
        begin = time.perf_counter()
        await asyncio.sleep(steady_s)
        steady_end = time.perf_counter()
        swap_number = 0
        for _ in range(rounds):
            for name, path in SWAP_URLS.items():
                url = f"{rasa_url}{path}"
                archive = archives[swap_number % 2]  # always a different file than served
                swap_number += 1
                swap_start = time.perf_counter()
                r = await http.put(url, params={"token": token},
                                   json={"model_file": str(archive)})
                swaps[name].append((swap_start, time.perf_counter()))
                if r.status_code != 204:
                    raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:300]}")
                await asyncio.sleep(after_s)
        stop.set()
        await asyncio.gather(*workers)

    def window(t0: float, t1: float) -> list[tuple[float, float, bool]]:
        # A turn belongs to a swap when it overlapped it at all.
        return [x for x in turns if x[0] < t1 and x[0] + x[1] > t0]

    result = {"fans": fans,
              "steady": stats([s for t, s, _ in turns if begin <= t and t + s < steady_end])}
    for name, spans in swaps.items():
        per_round = []
        for t0, t1 in spans:
            during = window(t0, t1)
            per_round.append({"swap_seconds": round(t1 - t0, 2),
                              "during_swap": stats([s for _, s, _ in during]),
                              "failed_turns": sum(1 for *_, ok in during if not ok)})
        result[name] = {
            "rounds": per_round,
            "median_swap_seconds": statistics.median(r["swap_seconds"] for r in per_round),
            "median_max_ms": statistics.median(r["during_swap"].get("max_ms", 0)
                                               for r in per_round),
            "turns_over_1s": sum(r["during_swap"].get("over_1s", 0) for r in per_round),
            "failed_turns": sum(r["failed_turns"] for r in per_round)}
    result["failed_turns_total"] = sum(1 for *_, ok in turns if not ok)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=3)
    parser.add_argument("--steady-s", type=float, default=20)
    parser.add_argument("--after-s", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("var/bench-activation.json"))
    args = parser.parse_args()
    from tests.support.rasa_servers import bot_model, start_bot_servers

    with tempfile.TemporaryDirectory() as tmp, start_bot_servers() as bot:
        archives = (repack(bot_model.model_path(), Path(tmp) / "same-model-a.tar.gz"),
                    repack(bot_model.model_path(), Path(tmp) / "same-model-b.tar.gz"))
        result = asyncio.run(measure(bot.rasa_url, bot.token, archives, args.fans,
                                     args.steady_s, args.after_s, args.rounds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    steady = result["steady"]
    parts = [f"activation fans={result['fans']} steady_p50_ms={steady.get('p50_ms')} "
             f"steady_max_ms={steady.get('max_ms')}"]
    for name in SWAP_URLS:
        r = result[name]
        parts.append(f"{name}: median_swap_s={r['median_swap_seconds']} "
                     f"median_max_ms={r['median_max_ms']} over_1s={r['turns_over_1s']} "
                     f"failed={r['failed_turns']} ({len(r['rounds'])} rounds)")
    print(" | ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
