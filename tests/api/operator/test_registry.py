"""Activation and rollback against the running Rasa server (``PUT /model``, no restart), and
the rules that keep an unevaluated or failing model from being served."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import httpx
import pytest

from api.registry import service as registry
from tests.api.conftest import REPO_ROOT, _harness, login, run_db

pytestmark = pytest.mark.rasa


def repacked(model, target):
    """The same model in a new archive (different bytes, so a different registry entry)."""
    with gzip.open(model, "rb") as src, open(target, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=1) as dst:
        shutil.copyfileobj(src, dst)
    return target


def served_model(real_bot) -> str:
    r = httpx.get(f"{real_bot.rasa_url}/status", params={"token": real_bot.token}, timeout=10)
    return r.json()["model_file"]


def passed_gate(session, model_id, compared_with_id, tmp_path):
    """As a new evaluation that passed would record it (the scripts are tested elsewhere)."""
    registry.record_evaluation(
        session, registry.get(session, model_id),
        metrics={"accuracy": 0.97, "macro_f1": 0.97, "per_intent_f1": {}},
        gate={"passed": True, "reasons": [], "checks": []},
        compared_with=registry.get(session, compared_with_id), evaluation_dir=tmp_path, by="sam")
    session.commit()


@pytest.fixture
async def h(bot_settings, bot_project, tmp_path, triage_engine):
    settings = bot_settings(BOT_PROJECT_DIR=str(bot_project), MODELS_DIR=str(tmp_path / "models"))
    async for harness in _harness(settings, triage=triage_engine, timers=False):
        yield harness


async def test_activate_swaps_the_running_bot_and_rollback_restores_it(h, real_bot, tmp_path):
    baseline = run_db(h.services, lambda s: registry.ensure_serving_flow(
        s, baseline=real_bot.model, by="test").id)
    candidate_file = repacked(real_bot.model, tmp_path / "candidate-1.tar.gz")

    def add_candidate(session):
        model = registry.register(session, path=candidate_file, source="console", by="sam")
        session.commit()
        return model.id

    candidate = run_db(h.services, add_candidate)
    sam = await login(h.client, "sam")
    # Never evaluated: refused, and Rasa still serves the baseline.
    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 409 and "not been evaluated" in r.json()["detail"]
    # Failed the gate: refused with the reasons.
    run_db(h.services, lambda s: registry.record_evaluation(
        s, registry.get(s, candidate), metrics={}, compared_with=registry.get(s, baseline),
        gate={"passed": False, "reasons": ["intent jobs F1 0.50 is under 0.8"]},
        evaluation_dir=tmp_path, by="sam") or s.commit())
    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 409 and "jobs F1" in r.json()["detail"]
    assert served_model(real_bot) == real_bot.model.name.removesuffix(".tar.gz") or \
        real_bot.model.name in served_model(real_bot)

    run_db(h.services, passed_gate, model_id=candidate, compared_with_id=baseline,
           tmp_path=tmp_path)
    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["activated_by"] == "sam"
    assert "candidate-1" in served_model(real_bot)
    # The bot still answers (same conversation store, new model).
    reply = await h.client.post("/webhooks/rest/webhook",
                                json={"sender": "after-swap", "message": "what time do you open?"})
    assert "23:30" in " ".join(m.get("text", "") for m in reply.json())

    listing = (await h.client.get("/api/v1/models", headers=sam)).json()
    assert listing["active_id"] == candidate
    statuses = {m["id"]: m["status"] for m in listing["models"]}
    assert statuses == {baseline: "retired", candidate: "active"}

    # One action back.
    r = await h.client.post("/api/v1/models/rollback", json={}, headers=sam)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == baseline
    assert real_bot.model.name.removesuffix(".tar.gz") in served_model(real_bot)
    history = (await h.client.get("/api/v1/models", headers=sam)).json()["history"]
    assert [e["action"] for e in history[:2]] == ["rolled_back", "activated"]
    assert history[0]["by"] == "sam"
    # Nothing earlier than the baseline's predecessor... but the candidate was served: it can
    # be rolled back to explicitly.
    r = await h.client.post("/api/v1/models/rollback", json={"to_model_id": candidate},
                            headers=sam)
    assert r.status_code == 200 and r.json()["id"] == candidate
    r = await h.client.post("/api/v1/models/rollback", json={}, headers=sam)
    assert r.status_code == 200 and r.json()["id"] == baseline


async def test_a_model_rasa_cannot_load_changes_nothing(h, real_bot, tmp_path):
    baseline = run_db(h.services, lambda s: registry.ensure_serving_flow(
        s, baseline=real_bot.model, by="test").id)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(gzip.compress(b"not a model"))

    def add(session):
        model = registry.register(session, path=broken, source="cli", by="sam")
        session.commit()
        return model.id

    bad = run_db(h.services, add)
    run_db(h.services, passed_gate, model_id=bad, compared_with_id=baseline, tmp_path=tmp_path)
    sam = await login(h.client, "sam")
    r = await h.client.post(f"/api/v1/models/{bad}/activate", headers=sam)
    assert r.status_code == 502 and "did not load" in r.json()["detail"]
    assert run_db(h.services, lambda s: registry.active(s).id) == baseline
    assert real_bot.model.name.removesuffix(".tar.gz") in served_model(real_bot)


def test_cli_serves_the_registry_and_refuses_unevaluated(tmp_path, real_bot):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "APP_ENV": "local",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "RASA_URL": real_bot.rasa_url, "RASA_TOKEN": real_bot.token}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "api.registry", *args], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    first = cli("serve-path", "--baseline", str(real_bot.model))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(real_bot.model.resolve())
    listed = cli("list")
    assert "active" in listed.stdout and "baseline by make run" in listed.stdout
    back = cli("rollback", "--no-swap")
    assert back.returncode == 1 and "no earlier model" in back.stderr
    refused = cli("activate", "99")
    assert refused.returncode == 1 and "not found" in refused.stderr


@pytest.fixture
def second_rasa(real_bot):
    """A second real Rasa process next to the session's (same token, same model)."""
    from tests.support.rasa_servers import start_bot_servers

    with start_bot_servers(real_bot.model, token=real_bot.token) as second:
        yield second


@pytest.fixture
async def h2(bot_settings, bot_project, tmp_path, triage_engine, real_bot, second_rasa):
    settings = bot_settings(BOT_PROJECT_DIR=str(bot_project), MODELS_DIR=str(tmp_path / "models"),
                            RASA_URLS=f"{real_bot.rasa_url},{second_rasa.rasa_url}",
                            RASA_MODEL_CHECK_S=0)
    async for harness in _harness(settings, triage=triage_engine, timers=False):
        yield harness


async def test_activation_and_rollback_reach_two_real_rasa_processes(h2, real_bot, second_rasa,
                                                                     tmp_path):
    """Activation swaps both processes, rollback swaps both back, and the listing says so."""
    baseline = run_db(h2.services, lambda s: registry.ensure_serving_flow(
        s, baseline=real_bot.model, by="test").id)
    candidate_file = repacked(real_bot.model, tmp_path / "candidate-two.tar.gz")

    def add(session):
        model = registry.register(session, path=candidate_file, source="console", by="sam")
        session.commit()
        return model.id

    candidate = run_db(h2.services, add)
    run_db(h2.services, passed_gate, model_id=candidate, compared_with_id=baseline,
           tmp_path=tmp_path)
    sam = await login(h2.client, "sam")
    r = await h2.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 200, r.text
    assert "candidate-two" in served_model(real_bot)
    assert "candidate-two" in served_model(second_rasa)
    listing = (await h2.client.get("/api/v1/models", headers=sam)).json()
    assert [(p["url"], p["model_id"], p["serves_active"]) for p in listing["processes"]] == [
        (real_bot.rasa_url, candidate, True), (second_rasa.rasa_url, candidate, True)]

    r = await h2.client.post("/api/v1/models/rollback", json={}, headers=sam)
    assert r.status_code == 200 and r.json()["id"] == baseline
    for rasa in (real_bot, second_rasa):
        assert real_bot.model.name.removesuffix(".tar.gz") in served_model(rasa)
    # Both already serve the active model: the check loads nothing.
    assert await h2.services.models.check() == 0
