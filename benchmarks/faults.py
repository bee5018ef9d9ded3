"""`make fault-test`: the cluster under load while its parts fail, and what that did to the fans.

Starts its own `redis-server` (a spare port, nothing on disk), a fake Meta Graph server
(tests/api/fakes.py), fresh PostgreSQL databases (the switchboard's and Rasa's tracker store,
dropped after) and `scripts/cluster.py` with two replicas and real Rasa; then runs fans through
the balancer without pause — web chat (socket.io, the rasa-webchat protocol), REST (with
`metadata.message_id`, resent with the same id after a lost connection) and Messenger (signed
webhook POSTs; replies collected at the fake Graph) — while staff who took some threads reply
through the staff API. During the load, one scenario at a time:

1. `replica`: SIGKILL one switchboard replica (pid from its pid file); the manager restarts it;
2. `rasa`: SIGKILL Rasa; the manager restarts it; the load goes on until it answers again;
3. `redis`: SIGKILL the spare Redis and start it again, empty, on the same port;
4. `webchat`: HAProxy cuts every web chat socket and the fans stay away a few seconds, then
   reconnect and send `session_request` again, as the widget does.

After each, the load stops and the system settles (every sent message answered, every reply
delivered, or a deadline), then the run is checked from the outside, the switchboard's database
and Rasa's tracker store (see `check`). Last line:
`faults scenarios=<n> sent=<n> stored=<n> answered=<n> delivered=<n> lost=<n> duplicated=<n>`;
the exit status is non-zero when anything was lost, duplicated, out of order or owned twice.

Settings (environment): FAULTS_SHORT=1 (the shortened form, `make fault-test-short`),
FAULTS_LOAD_S (load per scenario), FAULTS_SETTLE_S (the settling deadline), FAULTS_SCENARIOS
(comma-separated subset), FAULTS_PORT_BASE (balancer, then replicas; free ports when unset),
FAULTS_REDIS_PORT, RASA_PORT, ACTION_PORT, FAULTS_DB_PREFIX (default `faults`), APP_ENV (default
local).
Fans' text is synthetic: this runner may print it; the switchboard logs ids only.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.channels.messenger.signature import sign  # noqa: E402
from tests.api.fakes import FakeGraph, free_port  # noqa: E402

API_PY = ROOT / ".venv" / "bin" / "python"
PG_SERVER = os.environ.get("FAULTS_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
APP_SECRET = "faults-app-secret-" + uuid.uuid4().hex
VERIFY_TOKEN = "faults-verify-token"
PAGE_TOKEN = "faults-page-token"
STAFF_PASSWORD = "aurora-demo"  # local mode's demo password (api/settings.py)
STAFF = ("laura", "tom", "giulia", "noor", "karim", "marta", "sam")

# Synthetic fans' lines: bot questions, and ones that ask for a person (triage / the bot hand
# the thread to staff).
# (No line the bot does not understand: two misunderstandings in a row hand the thread to a
# person, and bot threads are what most of the load is for.)
BOT_LINES = ("what time do the doors open", "where can I buy tickets", "is there parking",
             "can I bring a water bottle", "where is the cloakroom", "hello", "thanks a lot",
             "how do I get there by train")
PERSON_LINES = ("I want to talk to a person please", "can I speak to a human",
                "I can't find my friend and she isn't answering")


def bot_lines() -> Iterator[str]:
    """A fan's bot questions in a shuffled round: drawn at random, a fan soon asks the same
    thing twice in three messages, which triage reads as a fan the bot is failing and hands to
    a person — after a minute of load no thread would be the bot's any more."""
    return itertools.cycle(random.sample(BOT_LINES, len(BOT_LINES)))


def say(message: str) -> None:
    print(f"[faults] {message}", flush=True)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


# --- the ledger: what the fans sent and received ------------------------------------------------

@dataclass
class Sent:
    channel: str
    fan: str  # the fan's key: web chat session id, REST sender, Messenger PSID
    message_id: str
    text: str
    scenario: str
    stored_ack: bool = False  # the switchboard answered the request that carried it


@dataclass
class Ledger:
    sent: dict[str, Sent] = field(default_factory=dict)  # by message id
    received: dict[tuple[str, str], list[str]] = field(default_factory=lambda:
                                                         collections.defaultdict(list))
    notices: collections.Counter = field(default_factory=collections.Counter)
    staff_sent: dict[str, int] = field(default_factory=dict)  # text -> conversation id
    staff_unsure: set[str] = field(default_factory=set)  # sent, answer lost: maybe stored
    scenario: str = "warm-up"

    def record(self, channel: str, fan: str, message_id: str, line: str) -> Sent:
        item = Sent(channel, fan, message_id, line, self.scenario)
        self.sent[message_id] = item
        return item


# --- fans ----------------------------------------------------------------------------------------

class WebchatFan:
    """rasa-webchat's protocol over socket.io: `session_request` on every (re)connect,
    `user_uttered` with a `message_id` (acknowledged; sent again with the same id when the
    socket dropped before the acknowledgement), `bot_uttered` collected."""

    def __init__(self, name: str, url: str, ledger: Ledger, person: bool) -> None:
        self.name, self.url, self.ledger, self.person = name, url, ledger, person
        self.session_id = f"faults-{name}-{uuid.uuid4().hex[:12]}"
        self.lines = bot_lines()
        self.sio: socketio.AsyncClient | None = None
        self.confirmed = asyncio.Event()
        self.away_until = 0.0
        self.count = 0
        self.unacked: list[Sent] = []
        self.resent = 0  # user_uttered sent again (same id) after a drop

    async def _connect(self) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        confirmed = asyncio.Event()

        async def on_confirm(session_id: str) -> None:
            if session_id == self.session_id:
                confirmed.set()

        async def on_uttered(payload: dict[str, Any]) -> None:
            if (payload.get("metadata") or {}).get("error"):
                self.ledger.notices[payload["metadata"]["error"]] += 1
                return
            if "text" in payload:
                self.ledger.received[("webchat", self.session_id)].append(payload["text"])

        sio.on("session_confirm", on_confirm)
        sio.on("bot_uttered", on_uttered)
        await sio.connect(self.url, socketio_path="/socket.io/", transports=["websocket"],
                          wait_timeout=10)
        self.sio, self.confirmed = sio, confirmed
        await sio.emit("session_request", {"session_id": self.session_id,
                                           "customData": {"language": "en"}})
        await asyncio.wait_for(confirmed.wait(), 15)

    async def ensure(self) -> bool:
        if self.sio is not None and self.sio.connected and self.confirmed.is_set():
            return True
        if time.monotonic() < self.away_until:
            return False
        if self.sio is not None:
            try:
                await self.sio.disconnect()
            except Exception:
                pass
            self.sio = None
        try:
            await self._connect()
            return True
        except Exception:
            return False

    async def drop(self, away_s: float) -> None:
        """The fan's network goes: the socket closes with no goodbye, the widget stays away."""
        self.away_until = time.monotonic() + away_s

    async def send(self, item: Sent) -> bool:
        try:
            await self.sio.call("user_uttered", {
                "message": item.text, "session_id": self.session_id,
                "customData": {"language": "en", "message_id": item.message_id}}, timeout=15)
            item.stored_ack = True
            return True
        except Exception:
            return False

    async def step(self) -> None:
        if not await self.ensure():
            return
        # What the dropped socket may not have taken: again, same id.
        for item in list(self.unacked):
            self.resent += 1
            if await self.send(item):
                self.unacked.remove(item)
            else:
                return
        self.count += 1
        line = (random.choice(PERSON_LINES) if self.person and self.count == 1
                else next(self.lines))
        item = self.ledger.record("webchat", self.session_id,
                                  f"{self.session_id}-m{self.count}", line)
        if not await self.send(item):
            self.unacked.append(item)

    async def flush(self) -> None:
        while self.unacked and await self.ensure():
            self.resent += 1
            if await self.send(self.unacked[0]):
                self.unacked.pop(0)
            else:
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self.sio is not None:
            try:
                await self.sio.disconnect()
            except Exception:
                pass


class RestFan:
    """Rasa's REST channel with `metadata.message_id`; a request whose connection was lost (or
    that the balancer could not place) is sent again with the same id."""

    def __init__(self, name: str, url: str, ledger: Ledger) -> None:
        self.sender = f"faults-rest-{name}-{uuid.uuid4().hex[:8]}"
        self.url, self.ledger = url, ledger
        self.lines = bot_lines()
        self.count = 0
        self.retries = 0
        self.unanswered: Sent | None = None  # the last request came back without replies
        self.in_flight = 0

    async def post(self, client: httpx.AsyncClient, item: Sent, deadline: float) -> None:
        body = {"sender": self.sender, "message": item.text,
                "metadata": {"message_id": item.message_id, "language": "en"}}
        while time.monotonic() < deadline:
            self.in_flight += 1
            try:
                r = await client.post("/webhooks/rest/webhook", json=body, timeout=60)
            except httpx.TransportError:
                self.retries += 1
                await asyncio.sleep(0.5)
                continue
            finally:
                self.in_flight -= 1
            if r.status_code in (502, 503, 504):
                self.retries += 1
                await asyncio.sleep(0.5)
                continue
            if r.status_code == 200:
                item.stored_ack = True
                replies = [x["text"] for x in r.json() if "text" in x]
                self.ledger.received[("rest", self.sender)].extend(replies)
                self.unanswered = None if replies else item
            else:
                self.ledger.notices[f"rest-{r.status_code}"] += 1
            return

    async def step(self, client: httpx.AsyncClient) -> None:
        self.count += 1
        item = self.ledger.record("rest", self.sender, f"{self.sender}-m{self.count}",
                                  next(self.lines))
        await self.post(client, item, time.monotonic() + 120)


class MessengerFan:
    """Meta's webhook: a signed POST per message with its `mid`; resent (same `mid`) until the
    switchboard answers 200, as Meta does."""

    def __init__(self, name: str, ledger: Ledger, person: bool) -> None:
        self.psid = f"faults-psid-{name}-{uuid.uuid4().hex[:8]}"
        self.ledger, self.person = ledger, person
        self.lines = bot_lines()
        self.count = 0

    async def step(self, client: httpx.AsyncClient) -> None:
        self.count += 1
        line = (random.choice(PERSON_LINES) if self.person and self.count == 1
                else next(self.lines))
        item = self.ledger.record("messenger", self.psid, f"mid.{self.psid}.{self.count}", line)
        body = {"object": "page", "entry": [{"id": "page-1", "time": int(time.time() * 1000),
                "messaging": [{"sender": {"id": self.psid}, "recipient": {"id": "page-1"},
                               "timestamp": int(time.time() * 1000),
                               "message": {"mid": item.message_id, "text": item.text}}]}]}
        raw = json.dumps(body).encode()
        headers = {"content-type": "application/json",
                   "x-hub-signature-256": sign(APP_SECRET, raw)}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = await client.post("/webhooks/messenger", content=raw, headers=headers,
                                      timeout=30)
                if r.status_code == 200:
                    item.stored_ack = True
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(1.0)


class Staff:
    """A staff member online, answering the threads they own through the staff API."""

    def __init__(self, handle: str, ledger: Ledger) -> None:
        self.handle, self.ledger = handle, ledger
        self.headers: dict[str, str] = {}
        self.count = 0
        self.replied: collections.Counter = collections.Counter()

    async def sign_in(self, client: httpx.AsyncClient) -> None:
        for _ in range(30):
            try:
                r = await client.post("/api/v1/auth/login",
                                      json={"handle": self.handle, "password": STAFF_PASSWORD})
                if r.status_code == 200:
                    self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                    r = await client.put("/api/v1/staff/me/presence",
                                         json={"presence": "online"}, headers=self.headers)
                    if r.status_code == 200:
                        return
            except httpx.TransportError:
                pass
            await asyncio.sleep(1)
        raise RuntimeError(f"staff {self.handle} could not sign in")

    async def step(self, client: httpx.AsyncClient) -> None:
        try:
            r = await client.get("/api/v1/conversations",
                                 params={"assignee": "me", "status": "assigned"},
                                 headers=self.headers)
        except httpx.TransportError:
            return
        if r.status_code != 200:
            return
        for conv in r.json():
            if self.replied[conv["id"]] >= 6:
                continue
            self.count += 1
            line = f"staff {self.handle} reply {self.count} {uuid.uuid4().hex[:8]}"
            try:
                r = await client.post(f"/api/v1/conversations/{conv['id']}/messages",
                                      json={"text": line}, headers=self.headers)
            except httpx.ConnectError:  # never reached a replica: nothing stored
                continue
            except httpx.TransportError:  # sent, answer lost: it may or may not be stored
                self.ledger.staff_unsure.add(line)
                continue
            if r.status_code == 201:
                self.ledger.staff_sent[line] = conv["id"]
                self.replied[conv["id"]] += 1
            else:
                self.ledger.notices[f"staff-{r.status_code}"] += 1


# --- the processes under test ----------------------------------------------------------------

class Redis:
    def __init__(self, port: int, directory: Path) -> None:
        self.port, self.directory = port, directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


class Cluster:
    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.directory = directory
        self.lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [str(API_PY), "scripts/cluster.py"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with open(self.directory / "manager.log", "a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self.lines.put(line)

    async def wait_for(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                if self.process.poll() is not None:
                    raise RuntimeError("the cluster manager exited") from None
                await asyncio.sleep(0.2)
                continue
            if line.strip() == wanted:
                return
        raise RuntimeError(f"no {wanted!r} from the cluster within {timeout:.0f} s")

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def pid(self, name: str) -> int | None:
        try:
            return int((self.directory / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        out = []
        for log in sorted((self.directory / "logs").glob("*.log")):
            out.append(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}")
        return "\n".join(out)


async def haproxy(directory: Path, command: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(directory / "haproxy.sock"))
    writer.write(command.encode() + b"\n")
    await writer.drain()
    answer = (await reader.read()).decode()
    writer.close()
    return answer


# --- the run -----------------------------------------------------------------------------------

@dataclass
class Totals:
    scenarios: int = 0
    sent: int = 0
    stored: int = 0
    answered: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    disordered: int = 0
    owners: int = 0
    problems: list[str] = field(default_factory=list)


class Run:
    def __init__(self) -> None:
        self.short = os.environ.get("FAULTS_SHORT", "") not in ("", "0")
        self.load_s = env_float("FAULTS_LOAD_S", 20 if self.short else 120)
        self.settle_s = env_float("FAULTS_SETTLE_S", 120 if self.short else 240)
        wanted = os.environ.get("FAULTS_SCENARIOS", "replica,rasa,redis,webchat")
        self.scenarios = [s.strip() for s in wanted.split(",") if s.strip()]
        self.ledger = Ledger()
        self.tag = uuid.uuid4().hex[:8]
        prefix = os.environ.get("FAULTS_DB_PREFIX", "faults")
        self.db_name = f"{prefix}_sb_{self.tag}"
        self.rasa_db = f"{prefix}_rasa_{self.tag}"
        base = os.environ.get("FAULTS_PORT_BASE")
        self.port = int(base) if base else free_port()
        self.replica_base = self.port + 1 if base else free_port()
        self.redis_port = int(os.environ.get("FAULTS_REDIS_PORT") or free_port())
        self.rasa_port = int(os.environ.get("RASA_PORT") or free_port())
        self.action_port = int(os.environ.get("ACTION_PORT") or free_port())
        self.rasa_token = "faults-" + uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop_load = asyncio.Event()
        self.totals = Totals()
        self.replica_to_kill = 1
        self.reported: set[str] = set()

    # -- setup --------------------------------------------------------------------------------
    def cluster_env(self, directory: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CLUSTER_", "RASA_", "DATABASE_URL", "REDIS_",
                                    "MESSENGER_", "FAULTS_", "LOG_LEVEL"))}
        redis_url = f"redis://127.0.0.1:{self.redis_port}"
        env.update(
            APP_ENV=os.environ.get("APP_ENV") or "local",
            CLUSTER_REPLICAS="2", CLUSTER_PORT=str(self.port),
            CLUSTER_REPLICA_BASE_PORT=str(self.replica_base), CLUSTER_DIR=str(directory),
            CLUSTER_RASA="1", RASA_PORT=str(self.rasa_port), ACTION_PORT=str(self.action_port),
            RASA_TOKEN=self.rasa_token,
            CLUSTER_DATABASE_URL=f"{PG_SERVER}/{self.db_name}",
            CLUSTER_RASA_TRACKER_URL=f"postgresql://postgres@127.0.0.1:5432/{self.rasa_db}",
            CLUSTER_RASA_LOCK_URL=f"{redis_url}/1", REDIS_URL=f"{redis_url}/0",
            MESSENGER_APP_SECRET=APP_SECRET, MESSENGER_VERIFY_TOKEN=VERIFY_TOKEN,
            MESSENGER_PAGE_TOKEN=PAGE_TOKEN, MESSENGER_GRAPH_URL=self.graph.url + "/v23.0",
        )
        if self.short:
            # engine.io pings every 5 s (not 25 s + 20 s): a web chat reply is proven, and one
            # a dead replica held is sent again, within seconds, so the short run settles fast.
            env.setdefault("WEBCHAT_PING_INTERVAL_S", "5")
            env.setdefault("WEBCHAT_PING_TIMEOUT_S", "5")
        return env

    async def wait_for_rasa(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    r = await client.get(f"http://127.0.0.1:{self.rasa_port}/status",
                                         params={"token": self.rasa_token})
                    if r.status_code == 200 and r.json().get("model_file"):
                        return
                except (httpx.TransportError, ValueError):
                    pass
                await asyncio.sleep(1)
        raise RuntimeError(f"Rasa did not answer with a model within {timeout:.0f} s")

    # -- load ---------------------------------------------------------------------------------
    async def fan_loop(self, step, pause: tuple[float, float]) -> None:
        while not self.stop_load.is_set():
            try:
                await step()
            except Exception as exc:  # a fan's own failure is a finding, not a crash
                self.ledger.notices[f"fan-error-{type(exc).__name__}"] += 1
            try:
                await asyncio.wait_for(self.stop_load.wait(), random.uniform(*pause))
            except TimeoutError:
                pass

    async def load(self, seconds: float, fault) -> None:
        self.stop_load.clear()
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits) as client:
            tasks = [asyncio.create_task(self.fan_loop(f.step, (2.0, 5.0)))
                     for f in self.webchat]
            tasks += [asyncio.create_task(self.fan_loop(lambda f=f: f.step(client), (2.0, 5.0)))
                      for f in self.rest + self.messenger]
            tasks += [asyncio.create_task(self.fan_loop(lambda s=s: s.step(client), (3.0, 6.0)))
                      for s in self.staff]
            await asyncio.sleep(min(8.0, seconds / 3))
            if fault is not None:
                await fault()
            await asyncio.sleep(max(0.0, seconds - min(8.0, seconds / 3)))
            self.stop_load.set()
            await asyncio.gather(*tasks)
            for fan in self.webchat:
                await fan.flush()

    # -- faults -------------------------------------------------------------------------------
    async def kill_replica(self) -> None:
        name = f"switchboard-{self.replica_to_kill}"
        self.replica_to_kill = 3 - self.replica_to_kill
        pid = self.cluster.pid(name)
        if pid is None:
            raise RuntimeError(f"no pid file for {name}")
        self.cluster.drain()
        # While REST requests are open (about half of them on this replica): their clients
        # lose the connection mid-request and send again with the same message id.
        for _ in range(1000):  # a turn takes a fraction of a second: look often
            if sum(f.in_flight for f in self.rest) >= 2:
                break
            await asyncio.sleep(0.01)
        say(f"SIGKILL {name} (pid {pid}) with {sum(f.in_flight for f in self.rest)} REST "
            "requests open")
        os.kill(pid, signal.SIGKILL)
        await self.cluster.wait_for("cluster ready replicas=2", 240)
        say(f"{name} is back")

    async def kill_rasa(self) -> None:
        pid = self.cluster.pid("rasa")
        if pid is None:
            raise RuntimeError("no pid file for rasa")
        say(f"SIGKILL rasa (pid {pid})")
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(2)
        started = time.monotonic()
        await self.wait_for_rasa(600)
        say(f"rasa is back after {time.monotonic() - started:.0f} s")

    async def restart_redis(self) -> None:
        say(f"SIGKILL redis-server on {self.redis_port}, start it again (empty)")
        self.redis.kill()
        await asyncio.sleep(2)
        self.redis.start()

    async def drop_webchat(self) -> None:
        away_s = 4.0
        say(f"every web chat socket cut at the balancer; fans away {away_s:.0f} s")
        for fan in self.webchat:
            await fan.drop(away_s)
        for n in (1, 2):
            await haproxy(self.directory, f"shutdown sessions server socketio/switchboard-{n}")

    # -- settle and check ---------------------------------------------------------------------
    def settled(self, conn) -> bool:
        pending_relay = conn.execute(text(
            "SELECT count(*) FROM messages WHERE relay_status = 'pending'")).scalar()
        pending_out = conn.execute(text(
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'emitted')")).scalar()
        stored = conn.execute(text(
            "SELECT count(*) FROM messages WHERE sender_type = 'fan'")).scalar()
        return pending_relay == 0 and pending_out == 0 and stored >= self.acked_count()

    def acked_count(self) -> int:
        return sum(1 for s in self.ledger.sent.values() if s.stored_ack)

    async def settle(self, engine) -> None:
        deadline = time.monotonic() + self.settle_s
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    if self.settled(conn):
                        break
                await asyncio.sleep(1)
            else:
                say(f"not settled after {self.settle_s:.0f} s")
            # REST is pulled: late answers ride on the fan's next request. Each fan says one
            # more thing, and asks again (same id) while that came back without its answer.
            for fan in self.rest:
                await fan.step(client)
                for _ in range(10):
                    if fan.unanswered is None:
                        break
                    await asyncio.sleep(3)
                    await fan.post(client, fan.unanswered, time.monotonic() + 60)
        await asyncio.sleep(3)  # the last web chat proofs and Graph calls

    def check(self, engine) -> Totals:
        """Everything so far, from the outside, the database and Rasa's tracker store."""
        t = Totals(scenarios=self.totals.scenarios, problems=[])
        ledger = self.ledger
        with engine.connect() as conn:
            fan_rows = conn.execute(text(
                "SELECT m.id, m.uid, m.fan_message_id, m.relay_status, c.id, i.external_id "
                "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "JOIN channel_identities i ON i.id = c.identity_id "
                "WHERE m.sender_type = 'fan' AND m.kind = 'incoming'")).all()
            outgoing = conn.execute(text(
                "SELECT m.id, m.conversation_id, m.text, m.sender_type, m.staff_id, "
                "c.channel, i.external_id, m.payload "
                "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "JOIN channel_identities i ON i.id = c.identity_id "
                "WHERE m.kind = 'outgoing' ORDER BY m.id")).all()
            open_per_identity = conn.execute(text(
                "SELECT identity_id, count(*) FROM conversations WHERE status <> 'resolved' "
                "GROUP BY identity_id HAVING count(*) > 1")).all()
            outbox_dup = conn.execute(text(
                "SELECT message_id, count(*) FROM outbox GROUP BY message_id "
                "HAVING count(*) > 1")).all()
        with self.rasa_engine.connect() as conn:
            user_events = conn.execute(text(
                "SELECT data FROM events WHERE type_name = 'user'")).scalars().all()
        turns = collections.Counter(json.loads(d).get("message_id") for d in user_events)

        # 1. every fan message stored exactly once (by its message id)
        stored_ids = collections.Counter(r[2] for r in fan_rows)
        t.sent = len(ledger.sent) + len(ledger.staff_sent)
        for mid, item in ledger.sent.items():
            n = stored_ids.get(mid, 0)
            if n == 0 and item.stored_ack:
                t.lost += 1
                t.problems.append(f"lost: {item.channel} message {mid} acknowledged, not stored")
            elif n == 0:
                t.problems.append(f"note: {item.channel} message {mid} never acknowledged, "
                                  "not stored")
                t.lost += 1
            t.stored += min(n, 1)
            if n > 1:
                t.duplicated += n - 1
                t.problems.append(f"duplicated: message {mid} stored {n} times")

        # 2. every bot turn run once (Rasa's tracker `user` events per message id)
        ours = {r[2] for r in fan_rows if r[2] in ledger.sent}
        for row in fan_rows:
            if row[2] not in ours:
                continue
            n = turns.get(row[1], 0)
            if row[3] == "answered" and n >= 1:
                t.answered += 1
            if n > 1:
                t.duplicated += n - 1
                t.problems.append(f"duplicated: bot turn of {row[2]} ran {n} times")
            if row[3] == "pending":
                t.lost += 1
                t.problems.append(f"lost: bot turn of {row[2]} never ran (still pending)")

        # 3. replies and staff messages delivered exactly once, in order, per conversation
        staff_stored = collections.Counter(r[2] for r in outgoing if r[3] == "staff")
        for line in ledger.staff_sent:
            n = staff_stored.get(line, 0)
            t.stored += min(n, 1)
            if n == 0:
                t.lost += 1
                t.problems.append(f"lost: staff message {line!r} not stored")
            elif n > 1:
                t.duplicated += n - 1
                t.problems.append(f"duplicated: staff message {line!r} stored {n} times")
        for line in ledger.staff_unsure:
            if staff_stored.get(line, 0) > 1:
                t.duplicated += staff_stored[line] - 1
        if outbox_dup:
            t.duplicated += sum(n - 1 for _, n in outbox_dup)
            t.problems.append(f"duplicated: {len(outbox_dup)} replies queued twice in the outbox")
        expected: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        fans = {(s.channel, s.fan) for s in ledger.sent.values()}
        for row in outgoing:
            key = (row[5], row[6])
            if key in fans and row[2]:
                expected[key].append(row[2])
        received = dict(ledger.received)
        for psid in {f for c, f in fans if c == "messenger"}:
            received[("messenger", psid)] = [
                c["body"]["message"]["text"] for c in self.graph.messages()
                if c["body"]["recipient"]["id"] == psid and "text" in c["body"]["message"]]
        for key in fans:
            t_got = received.get(key, [])
            got = [self.match(g, expected[key]) for g in t_got]
            want = collections.Counter(expected[key])
            have = collections.Counter(got)
            for line, n in want.items():
                t.delivered += min(n, have.get(line, 0))
                if have.get(line, 0) < n:
                    t.lost += n - have.get(line, 0)
                    t.problems.append(f"lost: {key[0]} {key[1]}: reply {line[:60]!r} received "
                                      f"{n - have.get(line, 0)}x fewer than stored")
            for line, n in have.items():
                if n > want.get(line, 0):
                    t.duplicated += n - want.get(line, 0)
                    t.problems.append(f"duplicated: {key[0]} {key[1]}: reply {line[:60]!r} "
                                      f"received {n - want.get(line, 0)}x more than stored")
            in_order = [g for g in got if g in want]
            if not self.ordered(in_order, expected[key]):
                t.disordered += 1
                t.problems.append(f"out of order: {key[0]} {key[1]}: received "
                                  f"{[g[:24] for g in t_got]!r}, stored "
                                  f"{[w[:24] for w in expected[key]]!r}")

        # 4. no conversation with two owners
        for identity, n in open_per_identity:
            t.owners += 1
            t.problems.append(f"two owners: identity {identity} has {n} open conversations")
        staff_per_conv: dict[int, set[int]] = collections.defaultdict(set)
        for row in outgoing:
            if row[3] == "staff" and row[4] is not None:
                staff_per_conv[row[1]].add(row[4])
        for conv, people in staff_per_conv.items():
            if len(people) > 1:
                t.owners += 1
                t.problems.append(f"two owners: conversation {conv} answered by staff {people}")
        return t

    @staticmethod
    def match(got: str, candidates: list[str]) -> str:
        """The stored text a received one is (web chat and Messenger sign staff messages
        "Name: text")."""
        if got in candidates:
            return got
        for line in candidates:
            if got.endswith(": " + line):
                return line
        return got

    @staticmethod
    def ordered(got: list[str], want: list[str]) -> bool:
        """The stored replies that were received came in the stored order: their longest
        common subsequence with what was received is all of them (repeats aside)."""
        have = collections.Counter(got)
        matched = sum(min(n, have.get(line, 0)) for line, n in collections.Counter(want).items())
        row = [0] * (len(want) + 1)
        for g in got:
            diagonal = 0
            for j, w in enumerate(want, start=1):
                diagonal, row[j] = row[j], (diagonal + 1 if g == w else max(row[j], row[j - 1]))
        return row[len(want)] == matched

    # -- main ---------------------------------------------------------------------------------
    async def main(self) -> int:
        self.directory = Path(tempfile.mkdtemp(prefix="faults-"))
        self.redis = Redis(self.redis_port, self.directory)
        self.graph = FakeGraph().start()
        engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.rasa_db}"'))
        self.cluster = None
        try:
            self.redis.start()
            say(f"redis-server on {self.redis_port}, fake Graph on {self.graph.url}, "
                f"databases {self.db_name} and {self.rasa_db}, cluster dir {self.directory}")
            self.cluster = Cluster(self.cluster_env(self.directory), self.directory)
            started = time.monotonic()
            await self.cluster.wait_for("cluster ready replicas=2", 600)
            await self.wait_for_rasa(600)
            say(f"cluster ready with Rasa after {time.monotonic() - started:.0f} s on {self.url}")
            return await self.scenarios_run()
        except Exception as exc:
            say(f"run failed: {type(exc).__name__}: {exc}")
            if self.cluster is not None:
                say("cluster logs (tails):\n" + self.cluster.tail())
            t = self.totals
            print(f"faults scenarios={t.scenarios} sent={t.sent} stored={t.stored} "
                  f"answered={t.answered} delivered={t.delivered} lost={t.lost} "
                  f"duplicated={t.duplicated}", flush=True)
            return 2
        finally:
            for fan in getattr(self, "webchat", []):
                await fan.close()
            if self.cluster is not None:
                self.cluster.stop()
            self.redis.kill()
            self.graph.stop()
            for name in (self.db_name, self.rasa_db):
                with engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()
            if os.environ.get("FAULTS_KEEP_DIR"):
                say(f"kept {self.directory}")
            else:
                shutil.rmtree(self.directory, ignore_errors=True)

    async def scenarios_run(self) -> int:
        db = create_engine(f"{PG_SERVER}/{self.db_name}")
        self.rasa_engine = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.rasa_db}")
        n_web, n_rest, n_messenger = (4, 3, 3) if self.short else (8, 4, 4)
        self.webchat = [WebchatFan(f"w{n}", self.url, self.ledger, person=n < 2)
                        for n in range(n_web)]
        self.rest = [RestFan(f"r{n}", self.url, self.ledger) for n in range(n_rest)]
        self.messenger = [MessengerFan(f"m{n}", self.ledger, person=n == 0)
                          for n in range(n_messenger)]
        self.staff = [Staff(h, self.ledger) for h in STAFF]
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            for person in self.staff:
                await person.sign_in(client)
        faults = {"replica": self.kill_replica, "rasa": self.kill_rasa,
                  "redis": self.restart_redis, "webchat": self.drop_webchat}
        say(f"load: {len(self.webchat)} web chat, {len(self.rest)} REST, "
            f"{len(self.messenger)} Messenger fans, {len(self.staff)} staff online")
        failed = False
        for name in self.scenarios:
            self.ledger.scenario = name
            say(f"scenario {name}: {self.load_s:.0f} s of load")
            started = time.monotonic()
            answered_before = self.totals.answered
            await self.load(self.load_s, faults[name])
            settling = time.monotonic()
            await self.settle(db)
            settled_s = time.monotonic() - settling
            self.totals.scenarios += 1
            t = self.check(db)
            t.scenarios = self.totals.scenarios
            self.totals = t
            if t.answered == answered_before:
                # Then the scenario proved nothing about bot turns (run once, taken over).
                t.problems.append(f"no bot turn was answered in scenario {name}")
            bad = [p for p in t.problems if not p.startswith("note:")]
            say(f"after {name} ({time.monotonic() - started:.0f} s): sent={t.sent} "
                f"stored={t.stored} answered={t.answered} delivered={t.delivered} "
                f"lost={t.lost} duplicated={t.duplicated} out_of_order={t.disordered} "
                f"two_owners={t.owners}; settled in {settled_s:.0f} s")
            new = [p for p in t.problems if p not in self.reported]
            self.reported.update(new)
            for p in new[:60]:
                say("  " + p)
            if len(new) > 60:
                say(f"  ... and {len(new) - 60} more")
            failed = failed or bool(bad)
        if self.ledger.notices:
            say(f"notices the fans got: {dict(self.ledger.notices)}")
        retries = sum(f.retries for f in self.rest)
        say(f"REST requests sent again after a lost connection: {retries}; staff replies sent: "
            f"{len(self.ledger.staff_sent)} (answer lost: {len(self.ledger.staff_unsure)}); "
            f"web chat messages sent again after a drop: {sum(f.resent for f in self.webchat)}")
        db.dispose()
        self.rasa_engine.dispose()
        t = self.totals
        failed = failed or t.lost > 0 or t.duplicated > 0 or t.disordered > 0 or t.owners > 0
        if t.disordered or t.owners:
            say(f"FAILED: out_of_order={t.disordered} two_owners={t.owners}")
        if not self.ledger.staff_sent:
            failed = True
            say("FAILED: no staff reply was sent: no thread reached a person (triage's models "
                "in models/? `make train-triage`)")
        print(f"faults scenarios={t.scenarios} sent={t.sent} stored={t.stored} "
              f"answered={t.answered} delivered={t.delivered} lost={t.lost} "
              f"duplicated={t.duplicated}", flush=True)
        return 1 if failed else 0


def main() -> int:
    return asyncio.run(Run().main())


if __name__ == "__main__":
    sys.exit(main())
