"""What triage's semantic layer costs a fan's bot turn: ``python -m benchmarks.triage_turn``
(switchboard environment; ``make bench-triage-turn``; 127.0.0.1 only, stops by itself).

The switchboard runs in-process on a temporary SQLite database against the local fake Rasa,
which answers after ``--rasa-ms`` (real Rasa takes 60–70 ms here). REST turns of ordinary
messages are timed in three set-ups, interleaved round by round so machine load hits all alike:

- ``as built``: patterns before the bot, the semantic layer in its own worker process while
  Rasa answers (the bot's reply is held until it has decided);
- ``worker thread``: the same, with the semantic layer in a worker thread of the switchboard's
  process (``TRIAGE_SEMANTIC_PROCESS=false``; the desk before the worker process);
- ``semantic first``: the same triage with the semantic layer run before Rasa (the naive place);
- ``no semantic layer``: patterns and emotion only (the desk before this layer).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.triage_fresh import percentile

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = ["what time do doors open tonight?", "how much are tickets for saturday",
            "is there a dress code", "can i bring a bag", "how do i get there from ibiza town",
            "do you have lockers", "who is playing on friday", "is there parking"]


class SemanticFirst:
    """The handoff manager's triage with the semantic layer read before the bot."""

    def __init__(self, manager) -> None:
        self.manager = manager
        self.original = manager.assess

    async def assess(self, text, history, *, meaning: bool = True):
        return await self.original(text, history, meaning=True)


async def run(rounds: int, rasa_ms: float) -> dict[str, list[float]]:
    import httpx

    from api.main import create_app, migrate
    from api.settings import Settings
    from api.triage.engine import DEFAULT_MODEL_DIR, Triage
    from tests.api.fakes import FakeActionServer, FakeRasa

    full = Triage.load()
    without = Triage.load(DEFAULT_MODEL_DIR, semantic_dir=None)
    rasa = FakeRasa().start()
    rasa.delay = rasa_ms / 1000
    actions = FakeActionServer().start()
    timings: dict[str, list[float]] = {"as built": [], "worker thread": [],
                                       "semantic first": [], "no semantic layer": []}
    apps = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in timings:
                url = f"sqlite:///{tmp}/{name.replace(' ', '_')}.db"
                migrate(url)
                settings = Settings(_env_file=None, APP_ENV="local", DATABASE_URL=url,
                                    RASA_URL=rasa.url, RASA_TOKEN=FakeRasa.TOKEN,
                                    ACTION_SERVER_URL=actions.url + "/webhook",
                                    STAFF_FILE=str(ROOT / "data" / "staff.yml"),
                                    DB_AUTO_MIGRATE=False,
                                    TRIAGE_SEMANTIC_PROCESS=name == "as built")
                triage = without if name == "no semantic layer" else full
                app = create_app(settings, triage=triage, timers=False)
                apps[name] = app
            async with _lifespans(apps):
                clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://bench")
                           for name, app in apps.items()}
                await _worker_up(apps["as built"].state.services.handoff)
                manager = apps["semantic first"].state.services.handoff
                manager.assess = SemanticFirst(manager).assess
                for i in range(rounds):
                    text = MESSAGES[i % len(MESSAGES)]
                    for name, client in clients.items():
                        started = time.perf_counter()
                        r = await client.post("/webhooks/rest/webhook",
                                              json={"sender": f"fan-{i}", "message": text})
                        assert r.status_code == 200, r.text
                        if i >= 8:  # warm-up (each round is a new fan: no duplicate drops)
                            timings[name].append((time.perf_counter() - started) * 1000)
                for client in clients.values():
                    await client.aclose()
    finally:
        rasa.stop()
        actions.stop()
    return timings


async def _worker_up(manager, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not manager.meaning_in_own_process:
        if time.monotonic() > deadline:
            raise SystemExit("the semantic worker process did not start")
        await asyncio.sleep(0.1)


class _lifespans:
    def __init__(self, apps) -> None:
        self.contexts = [app.router.lifespan_context(app) for app in apps.values()]

    async def __aenter__(self):
        for ctx in self.contexts:
            await ctx.__aenter__()

    async def __aexit__(self, *exc):
        for ctx in reversed(self.contexts):
            await ctx.__aexit__(*exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=208)
    parser.add_argument("--rasa-ms", type=float, default=60.0)
    args = parser.parse_args(argv)
    timings = asyncio.run(run(args.rounds, args.rasa_ms))
    base = statistics.median(timings["no semantic layer"])
    for name, values in timings.items():
        p50 = statistics.median(values)
        print(f"fan turn {name}: p50={p50:.1f} ms p99={percentile(values, 0.99):.1f} ms "
              f"({p50 - base:+.1f} ms at p50 vs no semantic layer; {len(values)} turns, "
              f"fake Rasa {args.rasa_ms:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
