"""Rasa's REST channel directly vs. through the switchboard: same messages, one run.

    .venv/bin/python -m benchmarks.switchboard [--turns 384] [--levels 1,8,32] [--rounds 4]
        [--json var/bench-switchboard.json]

Starts the real Rasa and action servers (tests/support/rasa_servers.py, trained model needed)
and a switchboard (`python -m api`, fresh SQLite under a temp dir) on free 127.0.0.1 ports. For
each concurrency level, N concurrent fans send the same fixed questions (a fan starts a new
conversation every six turns) to three targets:

- `direct`: Rasa's REST channel (`/webhooks/rest/webhook`), what a plain Rasa client gets;
- `channel`: Rasa's switchboard channel (`/webhooks/switchboard/webhook`, replies + parse), what
  the switchboard calls, straight from the benchmark — isolates the Rasa-side cost of the parse;
- `switchboard`: the switchboard's REST endpoint (stored, relayed through that channel, stored).

The targets take turns in `--rounds` interleaved rounds so background load drifts hit all three
alike. Printed: p50/p99 per turn, throughput, the switchboard's CPU time per turn and its
resident memory, as a Markdown table; the raw numbers go to `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.common import free_port, pct, wait_http_ok

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "hello",
    "what time do you open?",
    "how much are the tickets?",
    "is there a dress code?",
    "where can I leave my coat?",
    "thanks!",
]



def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


async def run_level(url: str, fans: int, turns: int, tag: str,
                    channel: bool = False) -> tuple[list[float], float]:
    """``fans`` concurrent fans, ``turns`` turns in all; a fan starts a new conversation (a new
    sender) every ``len(QUESTIONS)`` turns, so trackers stay the size of real conversations.
    Returns the per-turn latencies (s) and the wall time (s)."""
    per_fan = max(1, turns // fans)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=fans + 4, max_keepalive_connections=fans + 4)

    def body(sender: str, text: str) -> dict:
        data = {"sender": sender, "message": text}
        if channel:
            data["metadata"] = {"message_id": uuid.uuid4().hex, "channel": "rest"}
        return data

    def replies(r: httpx.Response) -> list:
        r.raise_for_status()
        data = r.json()
        return data["messages"] if channel else data

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def fan(i: int) -> None:
            sender = ""
            for k in range(per_fan):
                if k % len(QUESTIONS) == 0:
                    sender = f"bench-{tag}-{fans}-{i}-{uuid.uuid4().hex[:8]}"
                t0 = time.perf_counter()
                r = await http.post(url, json=body(sender, QUESTIONS[k % len(QUESTIONS)]))
                latencies.append(time.perf_counter() - t0)
                assert isinstance(replies(r), list)

        # warm-up outside the measurement, and a check that the bot really answers
        r = await http.post(url, json=body(f"warm-{tag}-{uuid.uuid4().hex[:8]}", QUESTIONS[0]))
        if not any(item.get("text") for item in replies(r)):
            raise RuntimeError(f"{url}: the bot answered {QUESTIONS[0]!r} with no text "
                               f"({r.text[:300]}); are its actions reachable?")
        t0 = time.perf_counter()
        await asyncio.gather(*(fan(i) for i in range(fans)))
        wall = time.perf_counter() - t0
    return latencies, wall


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {
        "turns": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "throughput_per_s": len(latencies) / wall,
    }


def start_switchboard(bot, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "local",  # the service defaults to production
        "SWITCHBOARD_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "RASA_URL": bot.rasa_url,
        "RASA_TOKEN": bot.token,
        "ACTION_SERVER_URL": bot.actions_url,
        "RASA_TIMEOUT_S": "60",
        "LOG_LEVEL": "warning",
    }
    log = open(workdir / "switchboard.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(url + "/healthz", proc, timeout=60, log=workdir / "switchboard.log")
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=384,
                        help="measured turns per level and target")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=4,
                        help="interleaved rounds per level (targets take turns)")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench-switchboard.json"))
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    sys.path.insert(0, str(ROOT))
    from tests.support.rasa_servers import start_bot_servers

    load_before = os.getloadavg()
    results: dict[str, object] = {"levels": {}, "cpus": os.cpu_count(),
                                  "loadavg_before": load_before}
    started = time.monotonic()
    with start_bot_servers() as bot, tempfile.TemporaryDirectory() as tmp:
        proc, sb_url = start_switchboard(bot, Path(tmp))
        targets = {
            "direct": (bot.rasa_url + "/webhooks/rest/webhook", False),
            "channel": (bot.rasa_url + "/webhooks/switchboard/webhook", True),
            "switchboard": (sb_url + "/webhooks/rest/webhook", False),
        }
        try:
            for fans in levels:
                per_round = max(fans, args.turns // args.rounds)
                lat: dict[str, list[float]] = {name: [] for name in targets}
                wall = dict.fromkeys(targets, 0.0)
                sb_cpu = 0.0
                for _ in range(args.rounds):
                    for name, (url, channel) in targets.items():
                        cpu0 = cpu_s(proc.pid)
                        got, took = asyncio.run(run_level(url, fans, per_round, name, channel))
                        if name == "switchboard":
                            sb_cpu += cpu_s(proc.pid) - cpu0
                        lat[name] += got
                        wall[name] += took
                level = {name: summary(lat[name], wall[name]) for name in targets}
                level["switchboard"]["cpu_ms_per_turn"] = (
                    1000 * sb_cpu / max(1, len(lat["switchboard"])))
                results["levels"][fans] = level
            results["switchboard_memory_kib"] = rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    results["seconds"] = time.monotonic() - started
    results["loadavg_after"] = os.getloadavg()

    print("| fans | turns | direct p50 / p99 ms | direct turns/s | channel p50 / p99 ms "
          "| switchboard p50 / p99 ms | switchboard turns/s | added p50 ms (vs channel) "
          "| throughput kept | switchboard CPU ms/turn |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for fans, r in results["levels"].items():
        d, c, s = r["direct"], r["channel"], r["switchboard"]
        print(f"| {fans} | {s['turns']} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} "
              f"| {d['throughput_per_s']:.1f} | {c['p50_ms']:.1f} / {c['p99_ms']:.1f} "
              f"| {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | {s['throughput_per_s']:.1f} "
              f"| {s['p50_ms'] - d['p50_ms']:+.1f} ({s['p50_ms'] - c['p50_ms']:+.1f}) "
              f"| {100 * s['throughput_per_s'] / d['throughput_per_s']:.0f}% "
              f"| {s['cpu_ms_per_turn']:.1f} |")
    mem = results["switchboard_memory_kib"]
    print(f"\nswitchboard resident memory: {mem.get('VmRSS', 0) / 1024:.0f} MiB "
          f"(peak {mem.get('VmHWM', 0) / 1024:.0f} MiB)")
    print(f"{results['cpus']} CPUs shared by Rasa, the action server, the switchboard and the "
          f"load generator; load average {load_before[0]:.2f} before, "
          f"{results['loadavg_after'][0]:.2f} after; {results['seconds']:.0f} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
