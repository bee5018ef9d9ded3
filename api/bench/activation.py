"""What fans feel while an operator activates a model: bot turns before vs during ``PUT /model``.

    python -m api.bench.activation [--fans 3] [--steady-s 20] [--after-s 15] [--out FILE]

Starts the real Rasa and action servers with the model of the current data (`make train`),
keeps ``fans`` fans asking questions over Rasa's REST channel, measures ``steady-s`` seconds of
normal turns, then swaps the running server to another archive of the same model (so only the
swap itself is measured, not a different model) twice — with Rasa's own ``PUT /model``, then with
the switchboard channel's threaded swap — measuring ``after-s`` seconds after each. 127.0.0.1
only; stops by itself; writes var/bench-activation.json. The last line is a one-line summary,
steady turns and both swaps side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from api.bench.common import pct

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


async def measure(rasa_url: str, token: str, candidates: dict[str, Path], fans: int,
                  steady_s: float, after_s: float) -> dict:
    """Steady turns, then each swap in turn (``after_s`` of turns after each)."""
    turns: list[tuple[float, float, bool]] = []  # (started, seconds, ok)
    stop = asyncio.Event()
    swaps: dict[str, tuple[float, float]] = {}
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
        for name, path in candidates.items():
            url = f"{rasa_url}{SWAP_URLS[name]}"
            swap_start = time.perf_counter()
            r = await http.put(url, params={"token": token}, json={"model_file": str(path)})
            swaps[name] = (swap_start, time.perf_counter())
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
    for name, (t0, t1) in swaps.items():
        during = window(t0, t1)
        result[name] = {"swap_seconds": round(t1 - t0, 2),
                        "during_swap": stats([s for _, s, _ in during]),
                        "failed_turns": sum(1 for *_, ok in during if not ok)}
    result["failed_turns_total"] = sum(1 for *_, ok in turns if not ok)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=3)
    parser.add_argument("--steady-s", type=float, default=20)
    parser.add_argument("--after-s", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("var/bench-activation.json"))
    args = parser.parse_args()
    from tests.support.rasa_servers import bot_model, start_bot_servers

    with tempfile.TemporaryDirectory() as tmp, start_bot_servers() as bot:
        candidates = {name: repack(bot_model.model_path(), Path(tmp) / f"{name}.tar.gz")
                      for name in SWAP_URLS}
        result = asyncio.run(measure(bot.rasa_url, bot.token, candidates, args.fans,
                                     args.steady_s, args.after_s))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    steady = result["steady"]
    parts = [f"activation fans={result['fans']} steady_p50_ms={steady.get('p50_ms')} "
             f"steady_max_ms={steady.get('max_ms')}"]
    for name in SWAP_URLS:
        r = result[name]
        parts.append(f"{name}: swap_s={r['swap_seconds']} "
                     f"max_ms={r['during_swap'].get('max_ms')} "
                     f"over_1s={r['during_swap'].get('over_1s')} failed={r['failed_turns']}")
    print(" | ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
