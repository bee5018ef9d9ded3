"""Training jobs: one at a time; a failed job says why and leaves the served model alone."""

from __future__ import annotations

import asyncio

from api.registry import service as registry
from tests.api.conftest import _harness, login, run_db


async def test_invalid_data_fails_the_job_visibly_and_serves_on(operator_settings, bot_project,
                                                                 triage_engine, tmp_path):
    # An example for an intent the domain does not know: `rasa data validate` refuses it.
    (bot_project / "data" / "nlu" / "broken.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: no_such_intent\n    examples: |\n      - hello there\n')
    baseline = tmp_path / "baseline.tar.gz"
    baseline.write_bytes(b"stand-in for the served model")
    async for h in _harness(operator_settings(), triage=triage_engine, timers=False):
        active = run_db(h.services, lambda s: registry.ensure_serving_flow(
            s, baseline=baseline, by="test").id)
        sam = await login(h.client, "sam")
        r = await h.client.post("/api/v1/training/jobs", headers=sam)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] == "running" and job["started_by"] == "sam"
        second = await h.client.post("/api/v1/training/jobs", headers=sam)
        assert second.status_code == 409
        await asyncio.wait_for(h.services.training.wait(), timeout=300)
        job = (await h.client.get(f"/api/v1/training/jobs/{job['id']}", headers=sam)).json()
        assert job["status"] == "failed" and job["phase"] == "validating"
        assert "did not validate" in job["error"]
        assert "no_such_intent" in job["log_tail"]
        assert job["model_id"] is None
        assert run_db(h.services, lambda s: registry.active(s).id) == active
        listing = (await h.client.get("/api/v1/training/jobs", headers=sam)).json()
        assert [j["id"] for j in listing] == [job["id"]]
        # Evaluations and plots: unknown or unevaluated models, and only the known plot names.
        for url, why in ((f"/api/v1/training/models/{active}/evaluation", "not been evaluated"),
                         ("/api/v1/training/models/999/evaluation", "not found"),
                         (f"/api/v1/training/models/{active}/plots/summary.png", "no such plot"),
                         (f"/api/v1/training/models/{active}/plots/..%2F..%2Fetc%2Fpasswd",
                          "no such plot"),
                         ("/api/v1/training/jobs/999", "not found")):
            r = await h.client.get(url, headers=sam)
            assert r.status_code == 404 and why in r.json()["detail"], (url, r.text)


async def test_a_restart_fails_the_job_it_interrupted(operator_settings, triage_engine):
    from api.training import service

    settings = operator_settings()
    async for h in _harness(settings, triage=triage_engine, timers=False):
        job_id = run_db(h.services, lambda s: service.create_flow(s, by="sam"))
    async for h in _harness(settings, triage=triage_engine, timers=False):
        job = run_db(h.services, lambda s: service.get(s, job_id))
        assert job["status"] == "failed" and "restarted" in job["error"]
