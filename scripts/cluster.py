"""`make cluster`: several switchboard replicas behind HAProxy, in the foreground, on this machine.

Started and watched here (a process manager, as systemd or Kubernetes would be in production):

- N switchboard replicas (CLUSTER_REPLICAS, default 2), each `python -m api` (uvicorn in that
  very process: no shell, no worker manager) on 127.0.0.1:CLUSTER_REPLICA_BASE_PORT+n-1 (8001,
  8002, ...), its process id in CLUSTER_DIR/switchboard-<n>.pid, on PostgreSQL
  (CLUSTER_DATABASE_URL, migrated once before they start) and Redis (REDIS_URL);
- HAProxy (`haproxy -db`, Debian's package) on CLUSTER_HOST:CLUSTER_PORT (127.0.0.1:8000) with a
  configuration generated into CLUSTER_DIR/haproxy.cfg: round robin, WebSockets passed through,
  a stickiness cookie only on /socket.io/ (socket.io's polling transport needs every request of
  a session on one replica), health checks on /livez;
- unless CLUSTER_RASA=0: the action server and CLUSTER_RASA_PROCESSES Rasa processes (default 1)
  on RASA_PORT, RASA_PORT+1, ... (named `rasa` when there is one, else `rasa-1`, `rasa-2`, ...),
  all with one generated CLUSTER_DIR/endpoints.yml: the tracker store on PostgreSQL
  (CLUSTER_RASA_TRACKER_URL, Rasa's own SQLTrackerStore) and the lock store on Redis
  (CLUSTER_RASA_LOCK_URL, RedisLockStore), so any of them can run any turn of any conversation.
  Every replica gets RASA_URLS (all of them: activation loads a model into each) and, as its
  RASA_URL (where its turns go), the process (n-1) mod k. The Rasa processes after the first
  start once it answers (the first creates the tracker store's tables).

PostgreSQL and Redis themselves are the machine's (`make services` starts them when down).

A process that exits is started again after a short back-off (its pid file is removed while it
is down and rewritten). The first replica starts alone (it seeds the staff accounts), the others
once it answers. When HAProxy sends traffic to every replica (its /livez checks pass; the
manager asks its stats socket) the manager prints
`cluster ready replicas=<n>` (again whenever the cluster is whole after a restart). If the
manager dies, even by SIGKILL, its children die with it (PR_SET_PDEATHSIG); on SIGTERM, SIGINT
or SIGHUP it stops them all. Children's output goes to CLUSTER_DIR/logs/<name>.log.

Every setting is an environment variable with a default (see `Config.from_env`).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import run  # noqa: E402  (make run's helpers: the served model, the action server's interface)

BOT_BIN = ROOT / ".venv-bot" / "bin"
API_PY = ROOT / ".venv" / "bin" / "python"
HAPROXY = "/usr/sbin/haproxy"
PR_SET_PDEATHSIG = 1
HEALTH_INTERVAL_S = 0.5
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 10.0
STABLE_AFTER_S = 30.0  # a process that ran this long starts again with the first back-off
STOP_GRACE_S = 15.0


def log(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


@dataclass(frozen=True)
class Config:
    replicas: int
    host: str
    port: int
    replica_base_port: int
    directory: Path
    database_url: str
    redis_url: str
    rasa: bool
    rasa_processes: int
    rasa_port: int
    action_port: int
    rasa_tracker_url: str
    rasa_lock_url: str
    env: dict[str, str]  # what every child inherits

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> Config:
        env = dict(environ)
        env.setdefault("APP_ENV", "local")  # as `make run`; the service alone is production
        env.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
        get = env.get
        rasa = get("CLUSTER_RASA", "1") not in ("0", "false", "no", "")
        if rasa:  # our own Rasa: a fresh token unless one is given (as `make run`)
            env.setdefault("RASA_TOKEN", secrets.token_urlsafe(24))
        return cls(
            replicas=int(get("CLUSTER_REPLICAS", "2")),
            # The balancer's interface: 0.0.0.0 to take traffic from other machines.
            host=get("CLUSTER_HOST", "127.0.0.1"),
            port=int(get("CLUSTER_PORT", "8000")),
            replica_base_port=int(get("CLUSTER_REPLICA_BASE_PORT", "8001")),
            directory=Path(get("CLUSTER_DIR", str(ROOT / "var" / "cluster"))).resolve(),
            database_url=get("CLUSTER_DATABASE_URL",
                             "postgresql+psycopg://postgres@127.0.0.1:5432/switchboard_cluster"),
            redis_url=get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            rasa=rasa,
            rasa_processes=int(get("CLUSTER_RASA_PROCESSES", "1")),
            rasa_port=int(get("RASA_PORT", "5005")),
            action_port=int(get("ACTION_PORT", "5055")),
            rasa_tracker_url=get("CLUSTER_RASA_TRACKER_URL",
                                 "postgresql://postgres@127.0.0.1:5432/rasa_cluster"),
            rasa_lock_url=get("CLUSTER_RASA_LOCK_URL", "redis://127.0.0.1:6379/1"),
            env=env,
        )

    def replica_port(self, n: int) -> int:
        return self.replica_base_port + n - 1

    def rasa_port_of(self, i: int) -> int:
        """The port of the cluster's own Rasa process ``i`` (1-based)."""
        return self.rasa_port + i - 1

    def rasa_name(self, i: int) -> str:
        return "rasa" if self.rasa_processes == 1 else f"rasa-{i}"

    @property
    def rasa_urls(self) -> list[str]:
        """Every Rasa process: the cluster's own, or RASA_URLS / RASA_URL as given."""
        if self.rasa:
            return [f"http://127.0.0.1:{self.rasa_port_of(i)}"
                    for i in range(1, self.rasa_processes + 1)]
        listed = [u.strip() for u in self.env.get("RASA_URLS", "").split(",") if u.strip()]
        return listed or [self.env.get("RASA_URL", "http://127.0.0.1:5005")]

    def rasa_url(self, n: int) -> str:
        """Where replica ``n`` sends its turns: the cluster's Rasa (n-1) mod k (the shared
        tracker and lock stores let any of them run any turn), or RASA_URL as given."""
        if self.rasa:
            return self.rasa_urls[(n - 1) % self.rasa_processes]
        return self.env.get("RASA_URL", "http://127.0.0.1:5005")

    @property
    def action_server_url(self) -> str:
        return (f"http://127.0.0.1:{self.action_port}" if self.rasa
                else self.env.get("ACTION_SERVER_URL", "http://127.0.0.1:5055"))

    def replica_env(self, n: int) -> dict[str, str]:
        env = {**self.env,
               "DATABASE_URL": self.database_url,
               "DB_AUTO_MIGRATE": "0",  # migrated once, before any replica starts
               "REDIS_URL": self.redis_url,
               "REPLICA_ID": f"switchboard-{n}",
               "SWITCHBOARD_HOST": "127.0.0.1",
               "SWITCHBOARD_PORT": str(self.replica_port(n)),
               "RASA_URL": self.rasa_url(n),
               "RASA_URLS": ",".join(self.rasa_urls),
               "ACTION_SERVER_URL": self.action_server_url}
        # The balancer is the replicas' TCP peer: believe its X-Forwarded-For, and count rate
        # limits in Redis, across replicas (both overridable).
        env.setdefault("TRUSTED_PROXIES", "127.0.0.1")
        env.setdefault("RATE_LIMIT_STORAGE_URL", self.redis_url)
        return env


# --- generated configuration ----------------------------------------------------------------

def haproxy_config(config: Config) -> str:
    """HAProxy in HTTP mode: round robin over the replicas, health-checked on /livez; WebSocket
    upgrades pass through (HTTP mode does that; `timeout tunnel` keeps them open); socket.io gets
    its own backend with a stickiness cookie, for the polling transport only needs it."""
    names = [f"switchboard-{n}" for n in range(1, config.replicas + 1)]
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{config.replica_port(n)} check"
        for n, name in enumerate(names, start=1))
    sticky = "\n".join(
        f"    server {name} 127.0.0.1:{config.replica_port(n)} track replicas/{name} "
        f"cookie {name}" for n, name in enumerate(names, start=1))
    return f"""# Generated by scripts/cluster.py at every start; edits are lost.
global
    # The manager asks which replicas the balancer sends traffic to (`show stat`) and takes a
    # replica out the moment its process exits (`set server ... health down`).
    stats socket {config.directory / "haproxy.sock"} mode 600 level admin

defaults
    mode http
    option forwardfor
    # A request that could not reach a replica goes to another (never one a replica received).
    retries 3
    option redispatch 1
    timeout connect 2s
    timeout http-request 10s
    timeout queue 10s
    # Longer than socket.io's long poll (25 s) and the inbox stream's heartbeat (15 s).
    timeout client 65s
    timeout server 65s
    # Open WebSockets.
    timeout tunnel 1h

frontend switchboard
    bind {config.host}:{config.port}
    use_backend socketio if {{ path_beg /socket.io/ }}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /livez
    http-check expect status 200
    # Lenient with a replica that is slow for a moment (a busy machine, a model loading in a
    # thread); one whose process exited is taken out by the manager at once.
    timeout check 5s
    default-server inter 1s fall 3 rise 1
    http-response set-header X-Replica %[srv_name]
{servers}

backend socketio
    balance roundrobin
    cookie SWITCHBOARD_REPLICA insert indirect nocache httponly
    http-response set-header X-Replica %[srv_name]
{sticky}
"""


def _url_parts(url: str) -> tuple[str, int | None, str, str | None, str | None]:
    parts = urlsplit(url)
    return (parts.hostname or "127.0.0.1", parts.port, unquote(parts.path.lstrip("/")),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None)


def rasa_endpoints(config: Config) -> tuple[str, dict[str, str]]:
    """Rasa's endpoints file and the environment it needs (passwords stay out of the file:
    Rasa reads ${VAR} from its environment)."""
    host, port, db, user, password = _url_parts(config.rasa_tracker_url)
    lhost, lport, ldb, luser, lpassword = _url_parts(config.rasa_lock_url)
    env: dict[str, str] = {}
    tracker = ["  dialect: postgresql", f"  url: {host}", f"  port: {port or 5432}",
               f"  db: {db}"]
    if user:
        tracker.append(f"  username: {user}")
    if password:
        env["RASA_TRACKER_PASSWORD"] = password
        tracker.append("  password: ${RASA_TRACKER_PASSWORD}")
    lock = [f"  url: {lhost}", f"  port: {lport or 6379}", f"  db: {ldb or 0}",
            "  key_prefix: fancare"]
    if luser:
        lock.append(f"  username: {luser}")
    if lpassword:
        env["RASA_LOCK_PASSWORD"] = lpassword
        lock.append("  password: ${RASA_LOCK_PASSWORD}")
    text = "\n".join([
        "# Generated by scripts/cluster.py at every start; edits are lost.",
        "action_endpoint:",
        f"  url: {config.action_server_url}/webhook",
        "tracker_store:",
        "  type: SQL",
        *tracker,
        "lock_store:",
        "  type: redis",
        *lock,
        "",
    ])
    return text, env


# --- databases --------------------------------------------------------------------------------

def ensure_database(url: str) -> None:
    """Create the PostgreSQL database a URL names when it does not exist (same server, through
    its maintenance database)."""
    import psycopg  # the switchboard's environment (this script runs with .venv's Python)
    from psycopg import sql

    host, port, name, user, password = _url_parts(url)
    with psycopg.connect(host=host, port=port or 5432, user=user, password=password,
                         dbname="postgres", autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        log(f"created database {name}")


def migrate(config: Config) -> bool:
    import subprocess

    done = subprocess.run([str(API_PY), "-m", "alembic", "upgrade", "head"], cwd=ROOT,
                          env={**config.env, "DATABASE_URL": config.database_url},
                          capture_output=True, text=True)
    if done.returncode != 0:
        log(f"migrating the switchboard's database failed:\n{done.stderr.strip()[-3000:]}")
    return done.returncode == 0


# --- processes --------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with(manager_pid: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: the kernel kills it when the manager dies."""

    def preexec() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != manager_pid:  # the manager died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    """One supervised process: started, its pid file kept, started again when it exits."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_dir: Path
    pid_dir: Path
    port: int | None = None  # a replica's: health-checked on /livez
    after: asyncio.Event | None = None  # first started once this is set
    up: asyncio.Event = field(default_factory=asyncio.Event)  # answered /livez once
    process: asyncio.subprocess.Process | None = None
    healthy: bool = False
    started_at: float = 0.0

    @property
    def pid_file(self) -> Path:
        return self.pid_dir / f"{self.name}.pid"

    async def start(self) -> None:
        with open(self.log_dir / f"{self.name}.log", "ab") as out:
            # Its own session: a Ctrl-C in the terminal reaches the manager only, which stops
            # the children in order; killpg on the child's group stops anything it started.
            self.process = await asyncio.create_subprocess_exec(
                *self.command, cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with(os.getpid()))
        self.started_at = time.monotonic()
        self.healthy = False
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(f"{self.process.pid}\n")
        tmp.replace(self.pid_file)  # readers never see a half-written file
        log(f"started {self.name} (pid {self.process.pid})")

    def signal_group(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass


class Manager:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.children: list[Child] = []
        self.stopping = asyncio.Event()
        self.whole = False

    def child(self, name: str, command: list[str], env: dict[str, str],
              port: int | None = None, after: asyncio.Event | None = None) -> Child:
        logs = self.config.directory / "logs"
        child = Child(name, command, env, logs, self.config.directory, port, after)
        self.children.append(child)
        return child

    @property
    def replicas(self) -> list[Child]:
        return [c for c in self.children if c.port is not None]

    async def supervise(self, child: Child) -> None:
        """Keep one child running until the manager stops."""
        backoff = BACKOFF_FIRST_S
        if child.after is not None:
            await child.after.wait()
        while not self.stopping.is_set():
            await child.start()
            status = await child.process.wait()
            child.pid_file.unlink(missing_ok=True)
            child.healthy = False
            if child.port is not None:
                # Out of the balancer now, not after its failed checks; back in once a check of
                # the new process passes (so "cluster ready" is never HAProxy's stale view).
                await haproxy_command(self.config.directory / "haproxy.sock",
                                      f"set server replicas/{child.name} health down")
            if self.stopping.is_set():
                return
            ran = time.monotonic() - child.started_at
            backoff = BACKOFF_FIRST_S if ran >= STABLE_AFTER_S else backoff
            log(f"{child.name} exited with status {status} after {ran:.1f} s; starting it again "
                f"in {backoff:.1f} s (log: {child.log_dir / (child.name + '.log')})")
            try:
                await asyncio.wait_for(self.stopping.wait(), backoff)
                return
            except TimeoutError:
                pass
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def watch_health(self) -> None:
        """Ask HAProxy which replicas pass its /livez check; say when the cluster is whole
        (again): every replica takes traffic from the balancer."""
        while not self.stopping.is_set():
            up = await balanced_servers(self.config.directory / "haproxy.sock")
            for replica in self.replicas:
                ok = replica.name in up
                alive = replica.process is not None and replica.process.returncode is None
                if ok and alive and not replica.healthy:
                    log(f"{replica.name} healthy (pid {replica.process.pid}, "
                        f"127.0.0.1:{replica.port})")
                replica.healthy = ok and alive
                if replica.healthy:
                    replica.up.set()
            whole = all(r.healthy for r in self.replicas)
            if whole and not self.whole:
                print(f"cluster ready replicas={len(self.replicas)}", flush=True)
            self.whole = whole
            try:
                await asyncio.wait_for(self.stopping.wait(), HEALTH_INTERVAL_S)
            except TimeoutError:
                pass

    async def watch_parent(self) -> None:
        """`make cluster` killed: make does not pass signals on to its recipe."""
        parent = os.getppid()
        while not self.stopping.is_set():
            if os.getppid() != parent:
                log("parent process is gone")
                self.stopping.set()
                return
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        log("stopping ...")
        for child in reversed(self.children):
            child.signal_group(signal.SIGTERM)
        started = [c.process for c in self.children if c.process is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in started)), STOP_GRACE_S)
        except TimeoutError:
            for child in self.children:
                if child.process is not None and child.process.returncode is None:
                    log(f"{child.name} did not stop in time; killing it")
                child.signal_group(signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in started))
        for child in self.children:
            child.pid_file.unlink(missing_ok=True)
        log("stopped")


async def haproxy_command(stats_socket: Path, command: str, timeout: float = 2.0) -> str:
    """One command on HAProxy's stats socket; "" while HAProxy does not answer."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(stats_socket)), timeout)
    except (OSError, TimeoutError):
        return ""
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.read(), timeout)).decode()
    except (OSError, TimeoutError):
        return ""
    finally:
        writer.close()


async def balanced_servers(stats_socket: Path) -> set[str]:
    """The replicas HAProxy's `replicas` backend has UP (its last checks of /livez passed);
    none while HAProxy does not answer."""
    lines = (await haproxy_command(stats_socket, "show stat")).splitlines()
    if not lines or not lines[0].startswith("# "):
        return set()
    rows = [dict(zip(lines[0][2:].split(","), line.split(","), strict=False))
            for line in lines[1:] if line]
    return {row["svname"] for row in rows
            # "UP 1/3": a check failed, but it still takes traffic
            if row.get("pxname") == "replicas" and row.get("status", "").startswith("UP")}


async def answered(url: str, up: asyncio.Event, stopping: asyncio.Event) -> None:
    """Set ``up`` once ``url`` answers 200 (Rasa's root: the server is listening)."""
    import urllib.request

    def ok() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    while not stopping.is_set():
        if await asyncio.to_thread(ok):
            up.set()
            return
        try:
            await asyncio.wait_for(stopping.wait(), 1.0)
        except TimeoutError:
            pass


def busy_ports(config: Config) -> list[int]:
    ports = [config.port] + [config.replica_port(n) for n in range(1, config.replicas + 1)]
    if config.rasa:
        ports += [config.rasa_port_of(i) for i in range(1, config.rasa_processes + 1)]
        ports.append(config.action_port)
    busy = []
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1" if port != config.port else config.host, port))
            except OSError:
                busy.append(port)
    return busy


def prepare(config: Config) -> bool:
    """Checks, stale pid files, databases, migration: everything before the first process."""
    if config.replicas < 1:
        log("CLUSTER_REPLICAS must be at least 1")
        return False
    if config.rasa_processes < 1:
        log("CLUSTER_RASA_PROCESSES must be at least 1")
        return False
    if config.rasa and config.action_port in map(config.rasa_port_of,
                                                 range(1, config.rasa_processes + 1)):
        log(f"ACTION_PORT {config.action_port} is one of the Rasa processes' ports "
            f"(RASA_PORT {config.rasa_port} and the {config.rasa_processes - 1} after it)")
        return False
    if not os.access(HAPROXY, os.X_OK):
        log(f"no {HAPROXY}: `make cluster` installs Debian's haproxy package")
        return False
    busy = busy_ports(config)
    if busy:
        log(f"ports already in use: {', '.join(map(str, busy))} (is `make run` or another "
            "cluster running? CLUSTER_PORT, CLUSTER_REPLICA_BASE_PORT, RASA_PORT, ACTION_PORT)")
        return False
    (config.directory / "logs").mkdir(parents=True, exist_ok=True)
    for stale in config.directory.glob("*.pid"):
        stale.unlink()
    try:
        ensure_database(config.database_url)
        if config.rasa:
            ensure_database(config.rasa_tracker_url)
    except Exception as exc:
        log(f"PostgreSQL: {type(exc).__name__}: {exc} (`make services` starts it)")
        return False
    return migrate(config)


async def main_async(config: Config) -> int:
    manager = Manager(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, manager.stopping.set)

    if config.rasa:
        model = run.served_model({**config.env, "DATABASE_URL": config.database_url})
        if model is None:
            return 1
        endpoints, rasa_env = rasa_endpoints(config)
        endpoints_file = config.directory / "endpoints.yml"
        endpoints_file.write_text(endpoints)
        manager.child("actions", [str(BOT_BIN / "rasa"), "run", "actions", "--port",
                                  str(config.action_port), "--actions", "actions"],
                      run.action_server_env(config.env))
        # A restarted process starts with this model; if another was activated since, the
        # replicas' periodic check (RASA_MODEL_CHECK_S) gives it the active one.
        first_rasa = None
        for i in range(1, config.rasa_processes + 1):
            rasa_process = manager.child(config.rasa_name(i), [
                str(BOT_BIN / "rasa"), "run", "--enable-api", "--auth-token",
                config.env["RASA_TOKEN"], "--port", str(config.rasa_port_of(i)), "--interface",
                "127.0.0.1", "--model", str(model), "--credentials", "credentials.yml",
                "--endpoints", str(endpoints_file)],
                # RASA_ENDPOINTS_FILE: the channel's model swap (bot/channels.py) loads the new
                # model with these endpoints too, not the project's endpoints.yml.
                {**run.bot_env(config.env), **rasa_env,
                 "RASA_ENDPOINTS_FILE": str(endpoints_file)},
                after=first_rasa.up if first_rasa else None)
            first_rasa = first_rasa or rasa_process
        if config.rasa_processes > 1:
            rasa_watch = asyncio.create_task(
                answered(f"{config.rasa_urls[0]}/", first_rasa.up, manager.stopping))
    # The first replica starts alone (it seeds the staff accounts); the others once it answers.
    first = None
    for n in range(1, config.replicas + 1):
        replica = manager.child(f"switchboard-{n}", [str(API_PY), "-m", "api"],
                                config.replica_env(n), port=config.replica_port(n),
                                after=first.up if first else None)
        first = first or replica
    haproxy_cfg = config.directory / "haproxy.cfg"
    haproxy_cfg.write_text(haproxy_config(config))
    manager.child("haproxy", [HAPROXY, "-db", "-f", str(haproxy_cfg)], config.env)

    tasks = [asyncio.create_task(manager.supervise(c)) for c in manager.children]
    tasks += [asyncio.create_task(manager.watch_health()),
              asyncio.create_task(manager.watch_parent())]
    if config.rasa and config.rasa_processes > 1:
        tasks.append(rasa_watch)
    log(f"balancer on http://{config.host}:{config.port}/ over {config.replicas} replicas "
        f"(ports {config.replica_port(1)}-{config.replica_port(config.replicas)}); "
        + (f"Rasa: {', '.join(config.rasa_urls)}; " if config.rasa else "")
        + f"logs in {config.directory / 'logs'}")
    await manager.stopping.wait()
    for task in tasks:  # first, so nothing is started again while the children stop
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop()
    return 0


def main() -> int:
    config = Config.from_env(dict(os.environ))
    # `make cluster` killed by SIGKILL: the kernel tells the manager, which stops its children.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if not prepare(config):
        return 1
    return asyncio.run(main_async(config))


if __name__ == "__main__":
    sys.exit(main())
