"""Scale-out, measured: one switchboard replica vs two behind HAProxy, the switchboard tier alone,
Rasa per process, and one staff event fanned out to 50 inbox streams over both replicas.

    .venv/bin/python -m benchmarks.cluster          (make bench-cluster)

Two clusters, one after the other, each started by `make cluster`'s own process manager
(scripts/cluster.py, a subprocess) on fresh PostgreSQL databases (``bench_cluster_*`` on
127.0.0.1:5432, dropped after) and a Redis server of this benchmark's own (a child
`redis-server` on a free port, so that INFO commandstats counts only this run):

A. real Rasa: the cluster's Rasa process (tracker store on PostgreSQL, lock store on Redis) and
   action server, two replicas. Interleaved rounds of three targets, each with BENCH_CLUSTER_FANS
   concurrent REST fans (a fan is a conversation of six turns, sequential; a new sender each
   conversation): Rasa's REST channel directly (Rasa per process), the balancer with one replica
   (the second set to maintenance on HAProxy's stats socket), the balancer with two.
B. instant fake Rasa (tests/api/fakes.py's FakeRasa, in a process of its own), two replicas:
   the balancer with one replica vs two (the switchboard tier alone); then the event fan-out:
   BENCH_CLUSTER_SSE_CLIENTS signed-in staff streams on /api/v1/events, half on each replica's
   own port, and BENCH_CLUSTER_EVENTS presence changes published on replica 1, each timed from
   just before the PUT until every stream has it.

Measured per target: turns/s, p50/p99 turn latency, the CPU each process used (utime + stime
from /proc/<pid>/stat: the replicas with their semantic-layer workers, Rasa, the action server,
HAProxy, the PostgreSQL backends of this run's databases, Redis, the fake Rasa, this load
generator), and per cluster the database transactions (pg_stat_database xact_commit /
xact_rollback) and Redis commands (INFO commandstats) per turn, background (heartbeats, polls
measured while idle) subtracted. Writes BENCH_CLUSTER_JSON, prints Markdown tables; stops by
itself (on 2 shared cores: 517 s at load average 6-14, 964 s at 12-19; most of it the real-Rasa
turns and the two clusters' start-up); 127.0.0.1 only.

Settings (environment):
  BENCH_CLUSTER_FANS=32            concurrent fans per target
  BENCH_CLUSTER_ROUNDS=2           interleaved rounds (targets take turns: background drift hits
                                   all alike)
  BENCH_CLUSTER_RASA_CONVERSATIONS=1  conversations (6 turns) per fan per round, real Rasa
  BENCH_CLUSTER_FAKE_CONVERSATIONS=3  the same, fake Rasa
  BENCH_CLUSTER_SSE_CLIENTS=50     inbox streams for the fan-out (split over both replicas)
  BENCH_CLUSTER_EVENTS=40          staff events timed
  BENCH_CLUSTER_TRIAGE=1           replicas load triage (models/triage, models/triage-semantic)
                                   as in production; 0: without (messages go untriaged)
  BENCH_CLUSTER_PORT_BASE=0        0: free ports; else balancer = base, replicas base+1, base+2,
                                   fake Rasa base+10 (fake actions base+11)
  BENCH_CLUSTER_RASA_PORT, BENCH_CLUSTER_ACTION_PORT  real Rasa / action server (default: free)
  BENCH_CLUSTER_REDIS_PORT=0       0: a free port; the benchmark's own redis-server
  BENCH_CLUSTER_PG=postgresql://postgres@127.0.0.1:5432   the PostgreSQL server
  BENCH_CLUSTER_PARTS=rasa,fake    which clusters to run
  BENCH_CLUSTER_JSON=var/bench-cluster.json
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg
import redis
from psycopg import sql

from benchmarks.common import free_port, pct
from tests.support.cluster import free_ports

ROOT = Path(__file__).resolve().parents[1]
API_PY = ROOT / ".venv" / "bin" / "python"
QUESTIONS = ["hello", "what time do you open?", "how much are the tickets?",
             "is there a dress code?", "where can I leave my coat?", "thanks!"]
PASSWORD = "aurora-demo"  # local mode: every person in staff.yml gets it at start
HANDLES = ["laura", "tom", "giulia", "noor", "karim", "marta", "sam"]
FAKE_RASA_TOKEN = "fake-rasa-token"  # tests/api/fakes.py's FakeRasa.TOKEN
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_FLUSH_S = 11.0  # PostgreSQL 15 backends flush their statistics when idle, at most every 10 s


def log(message: str) -> None:
    print(f"[bench-cluster] {message}", flush=True)


@dataclass(frozen=True)
class Settings:
    fans: int
    rounds: int
    rasa_conversations: int
    fake_conversations: int
    sse_clients: int
    events: int
    triage: bool
    port_base: int
    rasa_port: int
    action_port: int
    redis_port: int
    pg_server: str
    parts: tuple[str, ...]
    json_path: Path

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        get = env.get
        return cls(
            fans=int(get("BENCH_CLUSTER_FANS", "32")),
            rounds=int(get("BENCH_CLUSTER_ROUNDS", "2")),
            rasa_conversations=int(get("BENCH_CLUSTER_RASA_CONVERSATIONS", "1")),
            fake_conversations=int(get("BENCH_CLUSTER_FAKE_CONVERSATIONS", "3")),
            sse_clients=int(get("BENCH_CLUSTER_SSE_CLIENTS", "50")),
            events=int(get("BENCH_CLUSTER_EVENTS", "40")),
            triage=get("BENCH_CLUSTER_TRIAGE", "1") not in ("0", "false", "no", ""),
            port_base=int(get("BENCH_CLUSTER_PORT_BASE", "0")),
            rasa_port=int(get("BENCH_CLUSTER_RASA_PORT", "0")) or free_port(),
            action_port=int(get("BENCH_CLUSTER_ACTION_PORT", "0")) or free_port(),
            redis_port=int(get("BENCH_CLUSTER_REDIS_PORT", "0")) or free_port(),
            pg_server=get("BENCH_CLUSTER_PG", "postgresql://postgres@127.0.0.1:5432"),
            parts=tuple(p.strip() for p in get("BENCH_CLUSTER_PARTS", "rasa,fake").split(",")
                        if p.strip()),
            json_path=Path(get("BENCH_CLUSTER_JSON", str(ROOT / "var" / "bench-cluster.json"))),
        )


# --- processes and their CPU --------------------------------------------------------------------

def cpu_ticks(pid: int) -> int | None:
    """utime + stime of one process, in clock ticks; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (a replica's semantic-layer worker, Rasa's)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


class CpuMeter:
    """CPU seconds per group of processes over a window (pids taken at both ends: a process
    that started inside the window counts from zero)."""

    def __init__(self, groups) -> None:
        self.groups = groups  # () -> {group: set of pids}
        self.start: dict[str, dict[int, int]] = {}
        self.self_start = 0.0

    def snapshot(self) -> dict[str, dict[int, int]]:
        out = {}
        for name, pids in self.groups().items():
            out[name] = {p: t for p in pids if (t := cpu_ticks(p)) is not None}
        return out

    @staticmethod
    def own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def begin(self) -> None:
        self.start = self.snapshot()
        self.self_start = self.own_cpu()

    def end(self) -> dict[str, float]:
        now = self.snapshot()
        out = {}
        for name, ticks in now.items():
            before = self.start.get(name, {})
            out[name] = sum(t - before.get(p, 0) for p, t in ticks.items()) / CLK_TCK
        out["load generator"] = self.own_cpu() - self.self_start
        return out


# --- PostgreSQL and Redis ------------------------------------------------------------------------

def pg_admin(pg_server: str) -> psycopg.Connection:
    return psycopg.connect(f"{pg_server}/postgres", autocommit=True, connect_timeout=5)


def create_database(pg_server: str, name: str) -> None:
    with pg_admin(pg_server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(pg_server: str, name: str) -> None:
    try:
        with pg_admin(pg_server) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))
    except psycopg.Error as exc:
        log(f"could not drop database {name}: {exc}")


def pg_counters(pg_server: str, names: list[str]) -> dict[str, dict[str, int]]:
    with pg_admin(pg_server) as conn:
        rows = conn.execute("SELECT datname, xact_commit, xact_rollback FROM pg_stat_database "
                            "WHERE datname = ANY(%s)", (names,)).fetchall()
    return {name: {"commit": commit, "rollback": rollback} for name, commit, rollback in rows}


def pg_backends(pg_server: str, names: list[str]) -> set[int]:
    with pg_admin(pg_server) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)",
                            (names,)).fetchall()
    return {pid for (pid,) in rows}


def redis_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats), INFO itself left out."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()
            if name != "cmdstat_info"}


@contextmanager
def own_redis(port: int, directory: Path):
    """A redis-server of this run's own (a child, in the foreground; no persistence)."""
    redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
    out = open(directory / "redis.log", "wb")
    proc = subprocess.Popen([redis_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(directory)],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start: "
                                       + (directory / "redis.log").read_text()[-1000:]) from None
                time.sleep(0.1)
        yield proc, client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


# --- the fake Rasa, in a process of its own ------------------------------------------------------

def serve_fake_rasa(rasa_port: int, actions_port: int) -> None:
    """Runs in the child: FakeRasa and FakeActionServer on the given ports until terminated."""
    from tests.api import fakes

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # threads too
    ports = iter([rasa_port, actions_port])
    fakes.free_port = lambda: next(ports)  # the fakes pick their port at construction
    rasa, actions = fakes.FakeRasa().start(), fakes.FakeActionServer().start()
    print(f"fake ready {rasa.port} {actions.port}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


@contextmanager
def fake_rasa(rasa_port: int, actions_port: int, directory: Path):
    out = open(directory / "fake-rasa.log", "w+")
    proc = subprocess.Popen([str(API_PY), "-m", "benchmarks.cluster", "--fake-rasa",
                             str(rasa_port), str(actions_port)], cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while "fake ready" not in (directory / "fake-rasa.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake Rasa did not start: "
                                   + (directory / "fake-rasa.log").read_text()[-1000:])
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


# --- the cluster ---------------------------------------------------------------------------------

@dataclass
class Cluster:
    process: subprocess.Popen
    directory: Path
    port: int
    replica_ports: list[int]
    databases: list[str]
    lines: queue.Queue = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def replica_url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.replica_ports[n - 1]}"

    def pid(self, name: str) -> int | None:
        try:
            return int((self.directory / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted((self.directory / "logs").glob("*.log")))

    def wait_for_line(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line.strip() == wanted:
                return
        raise RuntimeError(f"no {wanted!r} within {timeout:.0f} s:\n" + "".join(self.seen[-30:])
                           + self.logs())

    def haproxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.directory / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def up_servers(self) -> set[str]:
        lines = self.haproxy("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            return set()
        rows = [dict(zip(lines[0][2:].split(","), line.split(","), strict=False))
                for line in lines[1:] if line]
        return {r["svname"] for r in rows
                if r.get("pxname") == "replicas" and r.get("svname") != "BACKEND"
                and r.get("status", "").startswith("UP")}

    def balance_over(self, replicas: int) -> None:
        """Send the balancer's traffic to the first ``replicas`` replicas only (the others in
        maintenance on HAProxy; still running, so idle work stays the same in both modes)."""
        wanted = {f"switchboard-{n}" for n in range(1, replicas + 1)}
        for n in range(1, len(self.replica_ports) + 1):
            name = f"switchboard-{n}"
            state = "ready" if name in wanted else "maint"
            self.haproxy(f"set server replicas/{name} state {state}")
        deadline = time.monotonic() + 30
        while self.up_servers() != wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy does not balance over {sorted(wanted)}: "
                                   f"{sorted(self.up_servers())}")
            time.sleep(0.2)

    def process_groups(self, pg_server: str, extra: dict[str, int]) -> dict[str, set[int]]:
        groups: dict[str, set[int]] = {}
        for n in range(1, len(self.replica_ports) + 1):
            if (pid := self.pid(f"switchboard-{n}")) is not None:
                groups[f"replica {n}"] = descendants(pid)
        for name in ("rasa", "actions", "haproxy"):
            if (pid := self.pid(name)) is not None:
                groups[name] = descendants(pid)
        groups["postgres (this run's backends)"] = pg_backends(pg_server, self.databases)
        for name, pid in extra.items():
            groups[name] = descendants(pid)
        return groups


@contextmanager
def cluster(settings: Settings, directory: Path, redis_port: int, real_rasa: bool,
            fake_ports: tuple[int, int] | None):
    tag = uuid.uuid4().hex[:8]
    kind = "rasa" if real_rasa else "fake"
    sb_db = f"bench_cluster_{kind}_sb_{tag}"
    databases = [sb_db]
    create_database(settings.pg_server, sb_db)
    if real_rasa:
        rasa_db = f"bench_cluster_{kind}_tracker_{tag}"
        create_database(settings.pg_server, rasa_db)
        databases.append(rasa_db)
    if settings.port_base:
        port, base = settings.port_base, settings.port_base + 1
    else:
        port, base = free_port(), free_ports(2)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLUSTER_", "RASA_", "DATABASE_URL", "REDIS_", "TRIAGE_"))}
    sqlalchemy_server = settings.pg_server.replace("postgresql://", "postgresql+psycopg://", 1)
    env.update(
        APP_ENV="local", CLUSTER_REPLICAS="2", CLUSTER_PORT=str(port),
        CLUSTER_REPLICA_BASE_PORT=str(base), CLUSTER_DIR=str(directory / kind),
        CLUSTER_DATABASE_URL=f"{sqlalchemy_server}/{sb_db}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        LOG_LEVEL="WARNING",  # Rasa reads it too, and wants it upper case
        RASA_TIMEOUT_S="120",
    )
    if not settings.triage:
        env["TRIAGE_MODEL_DIR"] = str(directory / "no-triage")
    if real_rasa:
        env.update(CLUSTER_RASA="1", RASA_PORT=str(settings.rasa_port),
                   ACTION_PORT=str(settings.action_port),
                   CLUSTER_RASA_TRACKER_URL=f"{settings.pg_server}/{databases[1]}",
                   CLUSTER_RASA_LOCK_URL=f"redis://127.0.0.1:{redis_port}/1")
    else:
        env.update(CLUSTER_RASA="0", RASA_URL=f"http://127.0.0.1:{fake_ports[0]}",
                   ACTION_SERVER_URL=f"http://127.0.0.1:{fake_ports[1]}",
                   RASA_TOKEN=FAKE_RASA_TOKEN)
    log(f"starting the cluster ({'real Rasa' if real_rasa else 'fake Rasa'}; balancer "
        f":{port}, replicas :{base}, :{base + 1}) ...")
    process = subprocess.Popen([str(API_PY), "scripts/cluster.py"], cwd=ROOT, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    started = Cluster(process, directory / kind, port, [base, base + 1], databases)

    def read() -> None:
        for line in process.stdout:
            started.seen.append(line)
            started.lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        started.wait_for_line("cluster ready replicas=2", timeout=300)
        wait_ready(started, settings.triage, timeout=400)
        yield started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for name in databases:
            drop_database(settings.pg_server, name)


def wait_ready(c: Cluster, triage: bool, timeout: float) -> None:
    """Every replica's /healthz: database, Rasa, the action server and (with triage) the
    triage models loaded. Without triage its check is left out (it never loads)."""
    import httpx

    deadline = time.monotonic() + timeout
    pending = set(range(1, len(c.replica_ports) + 1))
    last = ""
    while pending and time.monotonic() < deadline:
        for n in sorted(pending):
            try:
                body = httpx.get(c.replica_url(n) + "/healthz", timeout=10).json()
            except (httpx.HTTPError, ValueError) as exc:
                last = f"replica {n}: {type(exc).__name__}"
                continue
            checks = body.get("checks", {})
            if not triage:
                checks.pop("triage", None)
            if all(check.get("ok") for check in checks.values()):
                pending.discard(n)
            else:
                last = f"replica {n}: {json.dumps(checks)[:400]}"
        if pending:
            time.sleep(1)
    if pending:
        raise RuntimeError(f"replicas not ready within {timeout:.0f} s ({last})\n" + c.logs())
    log("every replica is ready" + (" (triage loaded)" if triage else ""))


# --- load ----------------------------------------------------------------------------------------

async def fans_turns(url: str, fans: int, conversations: int,
                     tag: str) -> tuple[list[float], float, int, int]:
    """``fans`` concurrent fans, each ``conversations`` conversations of the six QUESTIONS,
    turns sequential within a fan. Returns per-turn latencies (s), the wall time (s), how
    many answers had no text and how many turns failed."""
    latencies: list[float] = []
    empty: list[str] = []
    errors: list[str] = []
    # Idle pooled connections are closed before HAProxy's keep-alive timeout (10 s) closes
    # them: aiohttp's default (15 s) would send a request on a connection being closed.
    connector = aiohttp.TCPConnector(limit=fans + 4, keepalive_timeout=4)
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def turn(sender: str, text: str) -> list:
            async with http.post(url, json={"sender": sender, "message": text}) as r:
                body = await r.text()
                if r.status != 200:
                    raise RuntimeError(f"{url}: {r.status} {body[:300]}")
                replies = json.loads(body)
            if not any(item.get("text") for item in replies):
                empty.append(text)  # counted and reported, not fatal
            return replies

        async def fan(i: int) -> None:
            for _ in range(conversations):
                sender = f"bench-{tag}-{i}-{uuid.uuid4().hex[:8]}"
                for text in QUESTIONS:
                    t0 = time.perf_counter()
                    try:
                        await turn(sender, text)
                    except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                        errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                        continue  # counted, not timed
                    latencies.append(time.perf_counter() - t0)

        # a warm connection pool and a check that the bot answers, outside the measurement
        await asyncio.gather(*(turn(f"warm-{tag}-{i}-{uuid.uuid4().hex[:6]}", QUESTIONS[0])
                               for i in range(fans)))
        t0 = time.perf_counter()
        await asyncio.gather(*(fan(i) for i in range(fans)))
        wall = time.perf_counter() - t0
    if empty:
        log(f"{url}: {len(empty)} answers without text (e.g. to {empty[0]!r})")
    if errors:
        log(f"{url}: {len(errors)} turns failed (e.g. {errors[0]})")
    return latencies, wall, len(empty), len(errors)


@dataclass
class Target:
    name: str
    url: str
    replicas: int  # balancer over this many replicas; 0: Rasa directly
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    window: float = 0.0  # wall time of the windows (warm-up included), for the background
    cpu: dict[str, float] = field(default_factory=dict)
    redis: dict[str, int] = field(default_factory=dict)  # commands during the windows
    empty: int = 0  # answers without text
    failed: int = 0  # turns without an answer (connection dropped, 5xx)
    warm: int = 0  # warm-up turns (one per fan per window): in the windows, not in the latencies

    def summary(self, redis_idle: dict[str, float]) -> dict:
        lat = self.latencies
        turns = float(len(lat))
        all_turns = turns + self.warm
        redis_per_turn = {}
        for cmd, n in self.redis.items():
            value = (n - redis_idle.get(cmd, 0.0) * self.window) / all_turns
            if value >= 0.005:
                redis_per_turn[cmd] = value
        return {"turns": len(lat), "wall_s": self.wall, "answers_without_text": self.empty,
                "failed_turns": self.failed,
                "turns_per_s": turns / self.wall if self.wall else 0.0,
                "p50_ms": statistics.median(lat) * 1000, "p99_ms": pct(lat, 0.99) * 1000,
                # CPU is read around each window, warm-up turns included: per turn of the window,
                # per second of the window
                "cpu_s": self.cpu, "window_s": self.window, "warm_up_turns": self.warm,
                "cpu_ms_per_turn": {k: 1000 * v / all_turns for k, v in self.cpu.items()},
                "cores_busy": {k: v / self.window for k, v in self.cpu.items()},
                "redis_per_turn": redis_per_turn,
                "redis_commands_per_turn": sum(redis_per_turn.values())}


def run_targets(c: Cluster, targets: list[Target], settings: Settings, conversations: int,
                meter: CpuMeter, client: redis.Redis) -> None:
    for r in range(settings.rounds):
        order = targets if r % 2 == 0 else list(reversed(targets))
        for t in order:
            if t.replicas:
                c.balance_over(t.replicas)
            calls0, w0 = redis_calls(client), time.monotonic()
            meter.begin()
            lat, wall, empty, failed = asyncio.run(fans_turns(t.url, settings.fans, conversations,
                                               f"{t.name.split()[0]}{r}"))
            used = meter.end()
            calls1, w1 = redis_calls(client), time.monotonic()
            t.latencies += lat
            t.wall += wall
            t.empty += empty
            t.failed += failed
            t.window += w1 - w0
            t.warm += settings.fans
            for k, v in used.items():
                t.cpu[k] = t.cpu.get(k, 0.0) + v
            for cmd, n in calls1.items():
                if n - calls0.get(cmd, 0):
                    t.redis[cmd] = t.redis.get(cmd, 0) + n - calls0.get(cmd, 0)
            log(f"round {r + 1}/{settings.rounds} {t.name}: {len(lat)} turns, "
                f"{len(lat) / wall:.1f} turns/s, p50 {statistics.median(lat) * 1000:.0f} ms")
    c.balance_over(len(c.replica_ports))


def pg_state(settings: Settings, c: Cluster) -> tuple[float, dict]:
    return time.monotonic(), pg_counters(settings.pg_server, c.databases)


def idle_rates(settings: Settings, c: Cluster, client: redis.Redis,
               seconds: float) -> tuple[dict, dict[str, float]]:
    """Transactions per second per database and Redis commands per second of the idle cluster
    (heartbeats, polls, blocking stream reads): the background subtracted from the turns'."""
    time.sleep(PG_FLUSH_S)
    pg_a, redis_a = pg_state(settings, c), redis_calls(client)
    time.sleep(seconds + PG_FLUSH_S)  # what the idle backends did is flushed too
    pg_b, redis_b = pg_state(settings, c), redis_calls(client)
    span = pg_b[0] - pg_a[0]
    pg = {db: {k: (v - pg_a[1][db][k]) / span for k, v in pg_b[1][db].items()} for db in pg_b[1]}
    rd = {cmd: (n - redis_a.get(cmd, 0)) / span for cmd, n in redis_b.items()
          if n - redis_a.get(cmd, 0)}
    return pg, rd


# --- the event fan-out ---------------------------------------------------------------------------

async def fan_out(c: Cluster, clients: int, events: int) -> dict:
    """``clients`` staff streams, alternately on replica 1's and replica 2's own port; Laura's
    presence toggled ``events`` times on replica 1; each event timed until every stream has it."""
    connector = aiohttp.TCPConnector(limit=clients + 10)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:

        async def token(base: str, handle: str) -> str:
            async with http.post(base + "/api/v1/auth/login",
                                 json={"handle": handle, "password": PASSWORD}) as r:
                if r.status != 200:
                    raise RuntimeError(f"login {handle}: {r.status} {await r.text()}")
                return (await r.json())["access_token"]

        homes = [1 + i % 2 for i in range(clients)]  # replica of each stream
        tokens = [await token(c.replica_url(homes[i]), HANDLES[i % len(HANDLES)])
                  for i in range(clients)]
        actor = await token(c.replica_url(1), "laura")
        received: list[dict[int, float]] = [{} for _ in range(clients)]
        ready = [asyncio.Event() for _ in range(clients)]
        waiters: dict[int, asyncio.Event] = {}
        ids: dict[str, int] = {}
        state = {"event": -1, "duplicates": 0}

        async def listen(i: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[i]}", "Accept": "text/event-stream"}
            async with http.get(c.replica_url(homes[i]) + "/api/v1/events",
                                headers=headers) as r:
                r.raise_for_status()
                frame: dict[str, str] = {}
                async for raw in r.content:
                    line = raw.decode().rstrip("\r\n")
                    if line:
                        key, _, value = line.partition(":")
                        frame[key] = value.lstrip(" ")
                        continue
                    kind, event_id = frame.get("event"), frame.get("id", "")
                    frame = {}
                    if kind == "hello":
                        ready[i].set()
                    elif kind == "staff.presence_changed":
                        stamp = time.perf_counter()
                        k = ids.setdefault(event_id, state["event"])
                        if k in received[i]:
                            state["duplicates"] += 1
                        else:
                            received[i][k] = stamp
                        if k in waiters and all(k in rec for rec in received):
                            waiters[k].set()

        tasks = [asyncio.create_task(listen(i)) for i in range(clients)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 60)
        all_ms: list[float] = []
        each_ms: dict[int, list[float]] = {1: [], 2: []}
        lost = 0
        headers = {"Authorization": f"Bearer {actor}"}
        for k in range(events):
            waiters[k] = asyncio.Event()
            state["event"] = k
            t0 = time.perf_counter()
            async with http.put(c.replica_url(1) + "/api/v1/staff/me/presence",
                                json={"presence": "away" if k % 2 == 0 else "online"},
                                headers=headers) as r:
                r.raise_for_status()
            try:
                await asyncio.wait_for(waiters[k].wait(), 10)
            except TimeoutError:
                lost += sum(1 for rec in received if k not in rec)
            else:
                all_ms.append((max(rec[k] for rec in received) - t0) * 1000)
            for i, rec in enumerate(received):
                if k in rec:
                    each_ms[homes[i]].append((rec[k] - t0) * 1000)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # late duplicates would show here
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stats(values: list[float]) -> dict:
        if not values:
            return {"n": 0}
        return {"n": len(values), "p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99),
                "max_ms": max(values)}

    return {"clients": clients, "per_replica": {1: homes.count(1), 2: homes.count(2)},
            "events": events, "all_received": stats(all_ms),
            "each_client_same_replica": stats(each_ms[1]),
            "each_client_other_replica": stats(each_ms[2]),
            "delivered": sum(len(r) for r in received), "expected": clients * events,
            "lost": lost, "duplicates": state["duplicates"]}


# --- the run -------------------------------------------------------------------------------------

def measure_cluster(c: Cluster, settings: Settings, redis_proc, redis_client, extra: dict,
                    targets: list[Target], conversations: int) -> dict:
    meter = CpuMeter(lambda: {**c.process_groups(settings.pg_server, extra),
                              "redis": {redis_proc.pid}})
    log("idle cluster: background transactions and Redis commands ...")
    pg_idle, redis_idle = idle_rates(settings, c, redis_client, 10.0)
    before = pg_state(settings, c)
    run_targets(c, targets, settings, conversations, meter, redis_client)
    time.sleep(PG_FLUSH_S)
    after = pg_state(settings, c)
    elapsed = after[0] - before[0]
    # Every measured turn (and warm-up turn) is a turn of Rasa's; only the balancer's are the
    # switchboard's.
    rasa_turns = sum(len(t.latencies) + t.warm for t in targets)
    switchboard_turns = sum(len(t.latencies) + t.warm for t in targets if t.replicas)
    pg: dict[str, dict] = {}
    for db, values in after[1].items():
        turns = switchboard_turns if "_sb_" in db else rasa_turns
        pg[db] = {k: max(0.0, (v - before[1][db][k] - pg_idle[db][k] * elapsed) / turns)
                  for k, v in values.items()}
        pg[db]["turns"] = turns
    return {"targets": {t.name: t.summary(redis_idle) for t in targets},
            "pg_per_turn": pg, "pg_idle_per_s": pg_idle, "redis_idle_per_s": redis_idle,
            "databases": c.databases}


def fmt_cpu(summary: dict) -> str:
    parts = [f"{k} {v:.2f}" for k, v in sorted(summary["cores_busy"].items(),
                                                key=lambda kv: -kv[1]) if v >= 0.01]
    return ", ".join(parts)


def print_tables(result: dict) -> None:
    print()
    print("| cluster | target | turns | turns/s | p50 ms | p99 ms | no text / failed "
          "| Redis cmds/turn | cores busy (CPU s / wall s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, part in result["clusters"].items():
        for name, s in part["targets"].items():
            print(f"| {kind} | {name} | {s['turns']} | {s['turns_per_s']:.1f} "
                  f"| {s['p50_ms']:.0f} | {s['p99_ms']:.0f} "
                  f"| {s['answers_without_text']} / {s['failed_turns']} "
                  f"| {s['redis_commands_per_turn']:.1f} | {fmt_cpu(s)} |")
    print()
    print("| cluster | CPU ms per turn (2 replicas) | PostgreSQL per turn | Redis per turn "
          "(2 replicas) |")
    print("|---|---|---|---|")
    for kind, part in result["clusters"].items():
        two = part["targets"]["balancer, 2 replicas"]
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(
            two["cpu_ms_per_turn"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
        pg = "; ".join(f"{'tracker' if '_tracker_' in db else 'switchboard'}: "
                       f"{v['commit']:.2f} commits + {v['rollback']:.2f} rollbacks"
                       for db, v in part["pg_per_turn"].items())
        top = sorted(two["redis_per_turn"].items(), key=lambda kv: -kv[1])[:8]
        rd = ", ".join(f"{k} {v:.2f}" for k, v in top)
        print(f"| {kind} | {cpu} | {pg} | {rd} |")
    if "fan_out" in result:
        f = result["fan_out"]
        a, s, o = f["all_received"], f["each_client_same_replica"], f["each_client_other_replica"]
        print()
        print(f"fan-out: {f['clients']} SSE clients ({f['per_replica'][1]} on replica 1, "
              f"{f['per_replica'][2]} on replica 2), {f['events']} events published on "
              f"replica 1: all received p50 {a.get('p50_ms', 0):.1f} / p99 "
              f"{a.get('p99_ms', 0):.1f} ms; one client on the publishing replica p50 "
              f"{s.get('p50_ms', 0):.1f} / p99 {s.get('p99_ms', 0):.1f} ms, on the other p50 "
              f"{o.get('p50_ms', 0):.1f} / p99 {o.get('p99_ms', 0):.1f} ms; delivered "
              f"{f['delivered']}/{f['expected']}, lost {f['lost']}, duplicates "
              f"{f['duplicates']}")
    print(f"\n{result['cpus']} CPUs; load average before {result['loadavg_before']}, after "
          f"{result['loadavg_after']}; {result['seconds']:.0f} s")


def stop_on_sigterm(*_) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: every cluster, server and database goes


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--fake-rasa":
        serve_fake_rasa(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    settings = Settings.from_env(dict(os.environ))
    if settings.triage and not (ROOT / "models" / "triage").is_dir():
        log("no models/triage: run `make train-triage`, or BENCH_CLUSTER_TRIAGE=0")
        return 1
    started = time.monotonic()
    result: dict = {"settings": {k: str(v) for k, v in settings.__dict__.items()},
                    "cpus": os.cpu_count(),
                    "loadavg_before": [round(x, 2) for x in os.getloadavg()], "clusters": {}}
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cluster-")))
        redis_proc, redis_client = stack.enter_context(own_redis(settings.redis_port, tmp))
        if "rasa" in settings.parts:
            with cluster(settings, tmp, settings.redis_port, True, None) as c:
                rasa_url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
                targets = [Target("Rasa directly", rasa_url, 0),
                           Target("balancer, 1 replica", c.url + "/webhooks/rest/webhook", 1),
                           Target("balancer, 2 replicas", c.url + "/webhooks/rest/webhook", 2)]
                result["clusters"]["real Rasa"] = measure_cluster(
                    c, settings, redis_proc, redis_client, {}, targets,
                    settings.rasa_conversations)
        if "fake" in settings.parts:
            if settings.port_base:
                fake_ports = (settings.port_base + 10, settings.port_base + 11)
            else:
                fake_ports = (free_port(), free_port())
            fake = stack.enter_context(fake_rasa(*fake_ports, tmp))
            with cluster(settings, tmp, settings.redis_port, False, fake_ports) as c:
                targets = [Target("balancer, 1 replica", c.url + "/webhooks/rest/webhook", 1),
                           Target("balancer, 2 replicas", c.url + "/webhooks/rest/webhook", 2)]
                result["clusters"]["fake Rasa"] = measure_cluster(
                    c, settings, redis_proc, redis_client, {"fake rasa": fake.pid}, targets,
                    settings.fake_conversations)
                log(f"event fan-out: {settings.sse_clients} streams, {settings.events} events")
                result["fan_out"] = asyncio.run(fan_out(c, settings.sse_clients,
                                                        settings.events))
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds"] = time.monotonic() - started
    settings.json_path.parent.mkdir(parents=True, exist_ok=True)
    settings.json_path.write_text(json.dumps(result, indent=2))
    print_tables(result)
    log(f"written {settings.json_path}")
    fan = result.get("fan_out")
    return 0 if fan is None or (fan["lost"] == 0 and fan["duplicates"] == 0) else 1


if __name__ == "__main__":
    raise SystemExit(main())
