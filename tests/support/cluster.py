"""`make cluster`'s process manager (scripts/cluster.py) started for a test: free ports, a fresh
PostgreSQL database of its own (and one for Rasa's tracker store when Rasa runs), a Redis key
prefix of its own, CLUSTER_DIR in the test's temp dir; everything stopped and dropped afterwards.

    with start_cluster(tmp_path / "cluster", rasa=False, env={...}) as cluster:
        cluster.wait_for_line("cluster ready replicas=2", timeout=120)

Also the /proc readers the cluster tests use to tell which process holds what.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.api.conftest import PG_ADMIN_URL
from tests.api.fakes import free_port

ROOT = Path(__file__).resolve().parents[2]
API_PY = ROOT / ".venv" / "bin" / "python"
PG_SERVER = PG_ADMIN_URL.rsplit("/", 1)[0]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free 127.0.0.1 ports."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def ours(pid: int, directory: Path) -> bool:
    """A process this test's cluster started (its replicas', HAProxy's or Rasa's command
    line)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (cmdline[:3] == [str(API_PY).encode(), b"-m", b"api"]
            or str(directory).encode() in b" ".join(cmdline))


def listening_inodes(pid: int, port: int) -> set[str]:
    """Inodes of the TCP sockets listening on 127.0.0.1:port, from the process's network view."""
    inodes = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            inodes.add(inode)
    return inodes


def holds_listener(pid: int, port: int) -> bool:
    """The process itself (not a parent or a worker) has the listening socket open."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(pid, port)}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) in wanted:
                return True
        except FileNotFoundError:  # closed since the listing (the server opens and closes fds)
            continue
    return False


@dataclass
class Cluster:
    process: subprocess.Popen
    directory: Path
    url: str  # the balancer's
    replica_ports: list[int]
    database_url: str  # the switchboard's (SQLAlchemy URL)
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for_line(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.strip() == wanted:
                return
        pytest.fail(f"no {wanted!r} within {timeout:.0f} s; the manager said:\n"
                    + "".join(self.seen[-40:]) + self.logs())

    def pid(self, name: str) -> int:
        return int((self.directory / f"{name}.pid").read_text())

    def replica_url(self, name: str) -> str:
        """A replica's own address (``switchboard-<n>``), past the balancer."""
        return f"http://127.0.0.1:{self.replica_ports[int(name.rsplit('-', 1)[1]) - 1]}"

    def logs(self, tail: int = 2000) -> str:
        out = []
        for log in sorted((self.directory / "logs").glob("*.log")):
            out.append(f"--- {log.name}\n{log.read_text(errors='replace')[-tail:]}")
        return "\n".join(out)


@contextlib.contextmanager
def start_cluster(directory: Path, *, rasa: bool, env: dict[str, str] | None = None,
                  replicas: int = 2, redis_url: str = "redis://127.0.0.1:6379/0",
                  ) -> Iterator[Cluster]:
    """Run scripts/cluster.py until the block ends (SIGTERM, then whatever a failed test left
    behind is killed); its databases are dropped and its Redis keys deleted afterwards.

    ``env`` is laid over the test's environment without any CLUSTER_*, RASA_*, DATABASE_URL or
    REDIS_URL of its own. Each switchboard's keys (rate limits, the event stream, socket.io's
    channel) carry a prefix of the cluster's own; with ``rasa``, Rasa's tracker store gets a
    fresh database and its lock store the same Redis under the ``fancare`` prefix (its keys
    are per conversation and removed when released)."""
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    databases = [f"sb_cluster_{tag}"] + ([f"rasa_cluster_{tag}"] if rasa else [])
    prefix = f"cluster-test-{uuid.uuid4().hex[:8]}"
    base, port = free_ports(replicas), free_port()
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("CLUSTER_", "RASA_", "DATABASE_URL", "REDIS_URL"))}
    child_env.update(
        APP_ENV="local", CLUSTER_REPLICAS=str(replicas), CLUSTER_PORT=str(port),
        CLUSTER_REPLICA_BASE_PORT=str(base), CLUSTER_DIR=str(directory),
        CLUSTER_RASA="1" if rasa else "0",
        CLUSTER_DATABASE_URL=f"{PG_SERVER}/{databases[0]}", REDIS_URL=redis_url,
        RATE_LIMIT_KEY_PREFIX=prefix, REDIS_PREFIX=prefix,
    )
    if rasa:
        child_env.update(
            RASA_PORT=str(free_port()), ACTION_PORT=str(free_port()),
            CLUSTER_RASA_TRACKER_URL=f"{PG_SERVER.replace('+psycopg', '')}/{databases[1]}",
            CLUSTER_RASA_LOCK_URL=redis_url)
    child_env.update(env or {})
    process = subprocess.Popen([str(API_PY), "scripts/cluster.py"], cwd=ROOT, env=child_env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    cluster = Cluster(process, directory, f"http://127.0.0.1:{port}",
                      [base + n for n in range(replicas)], child_env["CLUSTER_DATABASE_URL"])

    def read() -> None:
        for line in process.stdout:
            cluster.seen.append(line)
            cluster.lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        yield cluster
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid_file in directory.glob("*.pid"):  # only what a failed test left behind
            pid = int(pid_file.read_text())
            if ours(pid, directory):
                os.kill(pid, signal.SIGKILL)
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in databases:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
