"""`make cluster`'s process manager (scripts/cluster.py) for real: HAProxy from Debian's package,
two switchboard replicas on a throwaway PostgreSQL database, pid files, restart, and every child
gone with the manager. Rasa is left out (CLUSTER_RASA=0; its URL points at a closed port): the
replicas' liveness must not depend on it, and the fans' holding replies still come back through
the balancer. The Rasa side's generated endpoints file is checked against Rasa's own tracker and
lock stores in the bot environment (no model, no server).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from tests.api.conftest import PG_ADMIN_URL, REPO_ROOT
from tests.api.fakes import free_port
from tests.support.cluster import (
    API_PY,
    PG_SERVER,
    Cluster,
    gone,
    holds_listener,
    start_cluster,
)

pytestmark = pytest.mark.cluster

BOT_PY = REPO_ROOT / ".venv-bot" / "bin" / "python"
HOLDING = "Sorry, I can't answer right now."


def get(client: httpx.Client, path: str) -> httpx.Response:
    """GET as a browser does: an idempotent request whose reused keep-alive connection was
    closed without an answer is sent again once (RFC 9112, 9.3.1) — what HAProxy does, to let
    the client retry, when the replica behind a request dies."""
    try:
        return client.get(path)
    except httpx.RemoteProtocolError:
        return client.get(path)


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    directory = tmp_path / "cluster"
    # Left by an earlier run that was killed: removed (or rewritten) at start. No process can
    # have this id (one past the kernel's largest).
    directory.mkdir()
    impossible = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    for stale in ("switchboard-1", "switchboard-3", "haproxy"):
        (directory / f"{stale}.pid").write_text(f"{impossible}\n")
    dead = f"http://127.0.0.1:{free_port()}"
    with start_cluster(directory, rasa=False, env=dict(
        RASA_URL=dead, ACTION_SERVER_URL=dead + "/webhook", RASA_CONNECT_TIMEOUT_S="0.5",
        RASA_TIMEOUT_S="1", LOG_LEVEL="warning",
        # No triage models: loading them takes a busy machine's cores for half a minute, and
        # messages go to the bot untriaged meanwhile anyway (what this test sends).
        TRIAGE_MODEL_DIR=str(tmp_path / "no-triage"),
    )) as started:
        yield started


def test_cluster_runs_restarts_and_dies_with_its_manager(cluster):
    cluster.wait_for_line("cluster ready replicas=2", timeout=120)

    # Each pid file names the serving process itself: `python -m api`, holding its port.
    pids = {}
    for n, port in enumerate(cluster.replica_ports, start=1):
        pid = cluster.pid(f"switchboard-{n}")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        assert cmdline == [str(API_PY).encode(), b"-m", b"api"], cmdline
        assert holds_listener(pid, port), f"switchboard-{n} (pid {pid}) does not hold :{port}"
        pids[n] = pid

    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        # Round robin over both replicas; liveness does not need Rasa, readiness does.
        served = set()
        for _ in range(6):
            r = client.get("/livez")
            assert r.status_code == 200 and r.json()["status"] == "ok", r.text
            served.add(r.headers["x-replica"])
        assert served == {"switchboard-1", "switchboard-2"}
        assert client.get("/healthz").status_code == 503
        # With Rasa down, a fan still gets the honest holding reply through the balancer.
        r = client.post("/webhooks/rest/webhook", json={"sender": "fan-1", "message": "hi"},
                        timeout=30)
        assert r.status_code == 200 and r.json()[0]["text"].startswith(HOLDING), r.text

        # socket.io's polling transport: every request of a session reaches the replica that
        # holds it (the balancer's cookie); anything else stays round robin.
        r = client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert r.status_code == 200, r.text
        owner = r.headers["x-replica"]
        assert client.cookies.get("SWITCHBOARD_REPLICA") == owner
        sid = r.text.split('"sid":"', 1)[1].split('"', 1)[0]
        poll = {"EIO": "4", "transport": "polling", "sid": sid}
        for _ in range(4):
            r = client.post("/socket.io/", params=poll, content="40")
            assert r.status_code == 200 and r.headers["x-replica"] == owner, r.text
        assert {client.get("/livez").headers["x-replica"] for _ in range(4)} == served

        # SIGKILL a replica: the balancer keeps answering, the manager starts it again and
        # writes the new process's id.
        os.kill(pids[1], signal.SIGKILL)
        deadline = time.monotonic() + 60
        new_pid, answers = None, 0
        while time.monotonic() < deadline:
            r = get(client, "/livez")
            assert r.status_code == 200, r.text
            answers += 1
            try:
                new_pid = cluster.pid("switchboard-1")
            except (FileNotFoundError, ValueError):
                new_pid = None
            if new_pid not in (None, pids[1]) and holds_listener(new_pid, cluster.replica_ports[0]):
                break
            time.sleep(0.1)
        assert new_pid not in (None, pids[1]) and answers > 1
        cluster.wait_for_line("cluster ready replicas=2", timeout=60)
        assert {client.get("/livez").headers["x-replica"] for _ in range(4)} == served

    # SIGKILL the manager: everything it started goes with it.
    children = {name.stem: int(name.read_text()) for name in cluster.directory.glob("*.pid")}
    assert set(children) == {"switchboard-1", "switchboard-2", "haproxy"}
    cluster.process.kill()
    cluster.process.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(gone(pid) for pid in children.values()):
        time.sleep(0.1)
    assert {name: pid for name, pid in children.items() if not gone(pid)} == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(cluster.url + "/livez", timeout=2)


ENDPOINTS_CHECK = """
import asyncio, sys
from rasa.core.lock_store import LockStore, RedisLockStore
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

path, sender = sys.argv[1], sys.argv[2]
tracker_store = TrackerStore.create(read_endpoint_config(path, "tracker_store"), Domain.empty())
lock_store = LockStore.create(read_endpoint_config(path, "lock_store"))
assert isinstance(tracker_store, SQLTrackerStore), type(tracker_store)
assert isinstance(lock_store, RedisLockStore), type(lock_store)

async def main():
    tracker = DialogueStateTracker(sender, slots=[])
    tracker.update(UserUttered("hello"))
    async with lock_store.lock(sender):
        print("locked", lock_store.key_prefix + sender, flush=True)
        sys.stdin.readline()
        await tracker_store.save(tracker)

asyncio.run(main())
"""


def test_generated_rasa_endpoints_put_trackers_in_postgresql_and_locks_in_redis(tmp_path):
    """The endpoints file `make cluster` gives Rasa, read by Rasa's own tracker and lock stores:
    a tracker saved lands in the PostgreSQL database, a conversation's lock is a Redis key."""
    from scripts import cluster as manager

    db_name = f"rasa_cluster_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    config = manager.Config.from_env({
        "CLUSTER_RASA_TRACKER_URL": f"{PG_SERVER.replace('+psycopg', '')}/{db_name}",
        "CLUSTER_RASA_LOCK_URL": "redis://127.0.0.1:6379/1"})
    endpoints, extra_env = manager.rasa_endpoints(config)
    (tmp_path / "endpoints.yml").write_text(endpoints)
    sender = f"cluster-test-{uuid.uuid4().hex[:8]}"
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        manager.ensure_database(config.rasa_tracker_url)
        check = subprocess.Popen(
            [str(BOT_PY), "-c", ENDPOINTS_CHECK, str(tmp_path / "endpoints.yml"), sender],
            cwd=REPO_ROOT, env={**os.environ, **extra_env}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = check.stdout.readline()
        assert line.startswith("locked "), check.stderr.read()
        held = redis.Redis.from_url("redis://127.0.0.1:6379/1")
        assert held.exists(line.split()[1]), "the lock is not in Redis db 1"
        check.stdin.write("\n")
        check.stdin.flush()
        assert check.wait(60) == 0, check.stderr.read()
        assert not held.exists(line.split()[1])
        held.close()
        tracker_db = create_engine(f"{PG_SERVER}/{db_name}")
        with tracker_db.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = :s"),
                                 {"s": sender}).scalar()
        tracker_db.dispose()
        assert count == 1
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        engine.dispose()


def test_several_rasa_processes_share_the_replicas_and_every_replica_knows_them_all():
    """CLUSTER_RASA_PROCESSES=k: Rasa on RASA_PORT .. RASA_PORT+k-1; replica n sends its turns
    to the process (n-1) mod k, and every replica has all of them in RASA_URLS (activation
    loads the model into each). One process keeps the name `rasa`."""
    from scripts import cluster as manager

    config = manager.Config.from_env({"CLUSTER_REPLICAS": "3", "CLUSTER_RASA_PROCESSES": "2",
                                      "RASA_PORT": "5405"})
    everyone = "http://127.0.0.1:5405,http://127.0.0.1:5406"
    assert [(config.replica_env(n)["RASA_URL"], config.replica_env(n)["RASA_URLS"])
            for n in (1, 2, 3)] == [("http://127.0.0.1:5405", everyone),
                                    ("http://127.0.0.1:5406", everyone),
                                    ("http://127.0.0.1:5405", everyone)]
    assert [config.rasa_name(i) for i in (1, 2)] == ["rasa-1", "rasa-2"]
    # The second process's port is checked before anything starts.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        two = manager.Config.from_env({"CLUSTER_RASA_PROCESSES": "2",
                                       "RASA_PORT": str(port - 1)})
        assert port in manager.busy_ports(two)
    one = manager.Config.from_env({"RASA_PORT": "5405"})
    assert one.rasa_name(1) == "rasa" and one.rasa_urls == ["http://127.0.0.1:5405"]
    assert one.replica_env(2)["RASA_URL"] == "http://127.0.0.1:5405"
    # Without the cluster's own Rasa, the replicas use RASA_URL and RASA_URLS as given.
    given = manager.Config.from_env({"CLUSTER_RASA": "0", "RASA_URL": "http://rasa-a:5005",
                                     "RASA_URLS": "http://rasa-a:5005,http://rasa-b:5005"})
    assert given.replica_env(2)["RASA_URL"] == "http://rasa-a:5005"
    assert given.replica_env(2)["RASA_URLS"] == "http://rasa-a:5005,http://rasa-b:5005"
