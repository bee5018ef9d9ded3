"""`make run` (scripts/run.py) serves the registry's active model, not the newest file."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from api.db import Database
from api.events import InProcessEventBus
from api.main import migrate
from api.registry import service as registry
from tests.api.operator.test_registry import repacked
from tests.support.rasa_servers import bot_model, free_port

pytestmark = pytest.mark.rasa
ROOT = bot_model.ROOT


def test_run_serves_the_registry_active_model(tmp_path):
    baseline = bot_model.model_path()
    assert baseline.exists(), "run `make train` first"
    chosen = repacked(baseline, tmp_path / "operator-choice.tar.gz")
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    migrate(url)
    db = Database(url, InProcessEventBus())
    with db.session() as session:
        registry.ensure_serving_flow(session, baseline=baseline, by="test")
        model = registry.register(session, path=chosen, source="console", by="sam")
        model.gate = {"passed": True, "reasons": []}
        session.commit()
        registry.mark_active_flow(session, model_id=model.id, by="sam", action="activated")
    db.dispose()

    ports = {"RASA_PORT": free_port(), "ACTION_PORT": free_port(), "SWITCHBOARD_PORT": free_port()}
    token = "run-test-token-0123456789"
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "RASA_TOKEN": token,
           "DATABASE_URL": url, "RASA_TRACKER_DB": str(tmp_path / "tracker.db")}
    env.pop("BOT_MODEL", None)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(["python3",
                                str(ROOT / "scripts" / "run.py")], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        status = None
        while time.monotonic() < deadline and run.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{ports['RASA_PORT']}/status",
                              params={"token": token}, timeout=2)
                if r.status_code == 200 and r.json().get("model_file"):
                    status = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert status is not None, log.read_text()[-3000:]
        assert "operator-choice" in status["model_file"], status
        assert "serving the registry's active model" in log.read_text()
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=60)
