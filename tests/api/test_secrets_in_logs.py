"""Nothing secret in the logs of a whole `make run` session (scripts/run.py: the real Rasa and
action servers and the switchboard, one output file for all of them), with Meta's Graph API
replaced by tests/api/fakes.py: a Messenger verification handshake, a signed Messenger message
answered through the Send API, a REST message, a staff sign-in, /healthz. Every secret value is
then looked for in every byte logged. Also checks the action server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from api.channels.messenger.signature import sign
from tests.api.fakes import FakeGraph
from tests.support.rasa_servers import bot_model, free_port

pytestmark = pytest.mark.rasa
ROOT = bot_model.ROOT
READY_LINE = "press Ctrl-C to stop"


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def wait_for_line(log: Path, line: str, run: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in log.read_text(errors="replace"):
            return
        assert run.poll() is None, log.read_text(errors="replace")[-4000:]
        time.sleep(1)
    raise AssertionError(f"not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def test_a_make_run_session_logs_no_secret(tmp_path):
    assert bot_model.model_path().exists(), "run `make train` first"
    graph = FakeGraph().start()
    ports = {"RASA_PORT": free_port(), "ACTION_PORT": free_port(), "SWITCHBOARD_PORT": free_port()}
    secret = {name: f"{name.lower()}-{secrets.token_urlsafe(18)}" for name in (
        "RASA_TOKEN", "AUTH_TOKEN_SECRET", "MESSENGER_APP_SECRET", "MESSENGER_VERIFY_TOKEN",
        "MESSENGER_PAGE_TOKEN", "DEMO_STAFF_PASSWORD")}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, **secret,
           "APP_ENV": "local", "MESSENGER_APP_ID": "app-1",
           "MESSENGER_GRAPH_URL": graph.url + "/v23.0",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'switchboard.db'}",
           "RASA_TRACKER_DB": str(tmp_path / "tracker.db")}
    for name in ("BOT_MODEL", "ACTION_HOST", "SANIC_HOST", "LOG_LEVEL"):
        env.pop(name, None)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(["python3", str(ROOT / "scripts" / "run.py")], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{ports['SWITCHBOARD_PORT']}"
    try:
        wait_for_line(log, READY_LINE, run, timeout=420)
        with httpx.Client(base_url=url, timeout=60) as http:
            r = http.get("/webhooks/messenger", params={
                "hub.mode": "subscribe", "hub.verify_token": secret["MESSENGER_VERIFY_TOKEN"],
                "hub.challenge": "challenge-1234"})
            assert r.status_code == 200 and r.text == "challenge-1234", r.text
            raw = json.dumps({"object": "page", "entry": [{
                "id": "page-1", "time": 1700000000000, "messaging": [{
                    "sender": {"id": "psid-secrets"}, "recipient": {"id": "page-1"},
                    "timestamp": 1700000000000,
                    "message": {"mid": "mid-secrets-1", "text": "hello"}}]}]}).encode()
            r = http.post("/webhooks/messenger", content=raw, headers={
                "content-type": "application/json",
                "x-hub-signature-256": sign(secret["MESSENGER_APP_SECRET"], raw)})
            assert r.status_code == 200, r.text
            r = http.post("/webhooks/rest/webhook", json={"sender": "rest-secrets",
                                                         "message": "hello"})
            assert r.status_code == 200 and r.json(), r.text
            r = http.post("/api/v1/auth/login", json={
                "handle": "noor", "password": secret["DEMO_STAFF_PASSWORD"]})
            assert r.status_code == 200, r.text
            secret["staff bearer token"] = r.json()["access_token"]
            r = http.get("/api/v1/conversations",
                         headers={"Authorization": f"Bearer {secret['staff bearer token']}"})
            assert r.status_code == 200, r.text
            health = http.get("/healthz")
            assert health.status_code == 200, health.text
            deadline = time.monotonic() + 60
            while not graph.messages() and time.monotonic() < deadline:
                time.sleep(0.2)
        assert graph.messages(), "the Messenger message got no Send API call"
        assert {c["token"] for c in graph.calls} == {secret["MESSENGER_PAGE_TOKEN"]}
        action_sockets = listening_addresses(ports["ACTION_PORT"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=60)
        graph.stop()

    logged = log.read_text(errors="replace")
    assert "GET /healthz" in logged and "POST /webhooks/messenger" in logged  # all was logged
    leaked = {name for name, value in secret.items() if value in logged}
    leaked |= {name for name, value in secret.items() if value in health.text}
    assert not leaked, f"secrets in the logs: {sorted(leaked)}\n{logged[-6000:]}"
    assert action_sockets and action_sockets <= LOOPBACK, action_sockets  # not 0.0.0.0
