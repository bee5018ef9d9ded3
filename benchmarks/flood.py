"""Flood test: urgent web chat floods and login floods, absorbed; an ordinary fan's bot turn
before and during the flood, in the same run.

    .venv/bin/python -m benchmarks.flood [--fans 300] [--logins 100] [--json var/bench-flood.json]

Starts its own switchboard (uvicorn in a subprocess on a free 127.0.0.1 port, a temporary
SQLite database, the trained triage model, local mode with RATE_LIMIT_LOOPBACK=true and the
default limits) with a fake instant Rasa, a fake action server and a fake alert webhook
(tests/api/fakes.py, threads of this process). Clients bind their own loopback source
addresses: the flood from 127.0.0.2, ordinary fans from 127.0.0.3, wrong logins from
127.0.0.4, the real staff member from 127.0.0.5. Nobody is online, so every urgent thread is
queued and alerts (the worst case for alerts).

1. Baseline: ordinary fans chat (one message every ~1.1 s each) and their turns are timed.
2. Flood: the same again while ``--fans`` anonymous web chat sessions open at once from one
   address and each sends urgent text (a fan told to slow down at session_request waits the
   Retry-After and asks again, like a patient person reloading; each gives up after 180 s), and
   ``--logins`` concurrent wrong logins on a throwaway handle plus Noor's real one from another
   address.
Prints what fans and staff saw and writes ``--json``; bounded, stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import socketio
from sqlalchemy import create_engine, text

from benchmarks.common import free_port, pct, wait_http_ok
from tests.api.fakes import AlertReceiver, FakeActionServer, FakeRasa

ROOT = Path(__file__).resolve().parents[1]
FLOOD_FROM, FAN_FROM, GUESSER_FROM, STAFF_FROM = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
URGENT = [
    "there's a fight on the dance floor and someone is bleeding",
    "my friend collapsed near the toilets and isn't breathing properly",
    "someone spiked my drink i feel really weird",
]
ORDINARY = ["what time do you open tonight", "is there a cloakroom", "how much are tickets",
            "can I bring a bag", "where do I find lost property"]


def client(url: str, address: str) -> socketio.AsyncClient:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
    return socketio.AsyncClient(reconnection=False, http_session=session)


class Chat:
    """One web chat fan, as the rasa-webchat widget speaks."""

    def __init__(self, url: str, address: str) -> None:
        self.url = url
        self.sio = client(url, address)
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_confirm", lambda sid: self.inbox.put_nowait(("confirm", sid)))
        self.sio.on("bot_uttered", lambda data: self.inbox.put_nowait(("bot", data)))

    async def connect(self) -> None:
        await self.sio.connect(self.url, socketio_path="/socket.io/", transports=["websocket"],
                               wait_timeout=30)

    async def session(self) -> tuple[str | None, int]:
        """(session id, 0) or (None, retry_after)."""
        await self.sio.emit("session_request", {"session_id": None})
        kind, data = await asyncio.wait_for(self.inbox.get(), 120)
        if kind == "confirm":
            return data, 0
        return None, int((data.get("metadata") or {}).get("retry_after") or 1)

    async def say(self, text_: str, session_id: str, timeout: float = 30) -> dict:
        await self.sio.emit("user_uttered", {"message": text_, "session_id": session_id,
                                             "customData": {"language": "en"}})
        return (await asyncio.wait_for(self.inbox.get(), timeout))[1]

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        finally:
            if self.sio.eio.http is not None:
                await self.sio.eio.http.close()


async def ordinary_fans(url: str, fans: int, messages: int) -> tuple[list[float], int]:
    """Fans chatting at a normal pace; their bot turns in ms, and how often they were slowed."""
    turns: list[float] = []
    slowed = 0

    async def one(i: int) -> None:
        nonlocal slowed
        chat = Chat(url, FAN_FROM)
        await chat.connect()
        try:
            sid, _ = await chat.session()
            for m in range(messages):
                t0 = time.perf_counter()
                reply = await chat.say(ORDINARY[(i + m) % len(ORDINARY)], sid)
                turns.append((time.perf_counter() - t0) * 1000)
                if (reply.get("metadata") or {}).get("error") == "rate_limited":
                    slowed += 1
                await asyncio.sleep(1.1)
        finally:
            await chat.close()

    await asyncio.gather(*(one(i) for i in range(fans)))
    return turns, slowed


async def urgent_fan(url: str, i: int, stats: dict) -> None:
    chat = Chat(url, FLOOD_FROM)
    deadline = time.monotonic() + 180
    try:
        await chat.connect()
        sid = None
        while sid is None and time.monotonic() < deadline:
            sid, retry = await chat.session()
            if sid is None:
                stats["session_slowed"] += 1
                await asyncio.sleep(retry)
        if sid is None:
            stats["gave_up"] += 1
            return
        reply = await chat.say(URGENT[i % len(URGENT)], sid, timeout=180)
        meta = reply.get("metadata") or {}
        if meta.get("error") == "rate_limited":
            stats["message_slowed"] += 1
        elif "handoff" in meta:
            stats["handed_off"] += 1
        else:
            stats["other_reply"] += 1
    except Exception as exc:  # noqa: BLE001 - counted and reported
        stats["errors"] += 1
        stats.setdefault("error_kinds", {}).setdefault(type(exc).__name__, 0)
        stats["error_kinds"][type(exc).__name__] += 1
    finally:
        await chat.close()


async def logins(url: str, wrong: int) -> dict:
    out: dict = {"wrong_sent": wrong, "wrong_status": {}}

    async def guess(http: httpx.AsyncClient, n: int) -> None:
        r = await http.post("/api/v1/auth/login",
                            json={"handle": "throwaway-handle", "password": f"guess-{n}"})
        codes = out["wrong_status"]
        codes[r.status_code] = codes.get(r.status_code, 0) + 1

    guessers = httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(
        max_connections=wrong), transport=httpx.AsyncHTTPTransport(local_address=GUESSER_FROM))
    staff = httpx.AsyncClient(base_url=url, timeout=60,
                              transport=httpx.AsyncHTTPTransport(local_address=STAFF_FROM))
    async with guessers, staff:
        async def real() -> None:
            await asyncio.sleep(0.05)  # in the middle of the guesses
            t0 = time.perf_counter()
            r = await staff.post("/api/v1/auth/login",
                                 json={"handle": "noor", "password": "aurora-demo"})
            out["noor_status"] = r.status_code
            out["noor_ms"] = round((time.perf_counter() - t0) * 1000, 1)

        await asyncio.gather(real(), *(guess(guessers, n) for n in range(wrong)))
    return out


def count_threads(database_url: str) -> dict:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT priority, status, count(*) FROM conversations GROUP BY priority, status"
        )).all()
    engine.dispose()
    return {f"{p or 'none'}/{s}": n for p, s, n in rows}


async def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    database_url = f"sqlite:///{tmp / 'switchboard.db'}"
    rasa, actions, alerts = FakeRasa().start(), FakeActionServer().start(), AlertReceiver().start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "APP_ENV": "local", "DATABASE_URL": database_url,
           "RASA_URL": rasa.url, "RASA_TOKEN": FakeRasa.TOKEN,
           "ACTION_SERVER_URL": actions.url + "/webhook",
           "ALERT_WEBHOOK_URL": alerts.url + "/hook", "RATE_LIMIT_LOOPBACK": "true",
           "STAFF_FILE": str(ROOT / "data" / "staff.yml"), "LOG_LEVEL": "warning"}
    log = tmp / "switchboard.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        print("starting the switchboard (triage model loads) ...", flush=True)
        await asyncio.to_thread(wait_http_ok, url + "/healthz", proc, timeout=240, log=log)
        await ordinary_fans(url, 1, 2)  # warm-up: first turns load what triage loads lazily
        print("baseline: ordinary fans chatting ...", flush=True)
        base, base_slowed = await ordinary_fans(url, args.ordinary, args.messages)
        print(f"flood: {args.fans} urgent web chat fans, {args.logins} wrong logins, and the "
              f"ordinary fans again ...", flush=True)
        stats = {k: 0 for k in ("session_slowed", "handed_off", "message_slowed",
                                "other_reply", "gave_up", "errors")}
        started = time.perf_counter()
        flood = asyncio.gather(*(urgent_fan(url, i, stats) for i in range(args.fans)))
        during_task = asyncio.create_task(ordinary_fans(url, args.ordinary, args.messages))
        login_stats = await logins(url, args.logins)
        await flood
        flood_s = time.perf_counter() - started
        during, during_slowed = await during_task
    finally:
        proc.terminate()  # the lifespan sends held alert summaries before it stops
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        rasa.stop()
        actions.stop()
        alerts.stop()
    texts = [a.get("text", "") for a in alerts.received]
    return {
        "fans": args.fans, "flood_s": round(flood_s, 1), "urgent_fans": stats,
        "threads": count_threads(database_url),
        "alerts": {"posts": len(texts),
                   "single": sum(t.startswith("URGENT: conversation") for t in texts),
                   "flood_notices_and_summaries": sum(t.startswith("URGENT FLOOD")
                                                      for t in texts)},
        "logins": login_stats,
        "ordinary_turn_ms": {
            "without_flood": {"n": len(base), "p50": pct(base, 0.5), "p99": pct(base, 0.99)},
            "during_flood": {"n": len(during), "p50": pct(during, 0.5),
                             "p99": pct(during, 0.99)},
            "slowed_without": base_slowed, "slowed_during": during_slowed,
        },
        "rasa": "fake instant Rasa (tests/api/fakes.py)", "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fans", type=int, default=300)
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--ordinary", type=int, default=3, help="ordinary fans chatting")
    parser.add_argument("--messages", type=int, default=15, help="messages per ordinary fan")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-flood.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    u, lg, t = result["urgent_fans"], result["logins"], result["ordinary_turn_ms"]
    print(f"| urgent web chat fans from one address | {result['fans']} | handed off "
          f"{u['handed_off']} | told to slow down at session_request {u['session_slowed']} "
          f"times | gave up {u['gave_up']} | errors {u['errors']} |")
    print(f"| alert webhook posts | {result['alerts']['posts']} "
          f"({result['alerts']['single']} single, "
          f"{result['alerts']['flood_notices_and_summaries']} flood notice/summaries) |")
    print(f"| wrong logins from one address | {lg['wrong_sent']} | status codes "
          f"{lg['wrong_status']} | Noor from another address: {lg.get('noor_status')} |")
    print(f"| ordinary fan's bot turn p99 | without flood {t['without_flood']['p99']:.1f} ms | "
          f"during flood {t['during_flood']['p99']:.1f} ms |")
    ok = (u["handed_off"] == result["fans"] and lg.get("noor_status") == 200
          and lg["wrong_status"].get(429, 0) > 0 and t["slowed_without"] == t["slowed_during"] == 0)
    print("flood absorbed: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
