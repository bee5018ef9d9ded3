"""Activation and rollback reach every Rasa process of RASA_URLS (two fake Rasas here), each
process's state is recorded and shown to the operator, and a process that missed a model is
given the active one when it answers again."""

from __future__ import annotations

import asyncio

import pytest

from api.cluster import service as cluster
from api.cluster.service import RASA_MODEL_CHECK_LEASE, RASA_MODELS_LEASE, Member
from api.registry import service as registry
from tests.api.conftest import LiveServer, _harness, login, run_db
from tests.api.fakes import FakeRasa


@pytest.fixture
def second_rasa():
    server = FakeRasa().start()
    yield server
    server.stop()


def model_file(tmp_path, name: str):
    path = tmp_path / f"{name}.tar.gz"
    path.write_bytes(name.encode())  # the fakes never open it; the registry hashes it
    return path


def add_candidate(services, path, compared_with: int) -> int:
    """A registered candidate that passed the gate against ``compared_with``."""
    def add(session):
        model = registry.register(session, path=path, source="console", by="sam")
        registry.record_evaluation(
            session, model, metrics={"accuracy": 0.97, "macro_f1": 0.97, "per_intent_f1": {}},
            gate={"passed": True, "reasons": [], "checks": []},
            compared_with=registry.get(session, compared_with), evaluation_dir=path.parent,
            by="sam")
        session.commit()
        return model.id

    return run_db(services, add)


@pytest.fixture
def two_rasas(operator_settings, fake_rasa, second_rasa):
    def _make(**overrides):
        values = {"RASA_URLS": f"{fake_rasa.url},{second_rasa.url}",
                  "RASA_MODEL_CHECK_S": 0, **overrides}  # the tests call check() themselves
        return operator_settings(**values)

    return _make


@pytest.fixture
async def h(two_rasas, pattern_triage):
    async for harness in _harness(two_rasas(), triage=pattern_triage, timers=False):
        yield harness


@pytest.fixture
def baseline(h, tmp_path) -> int:
    path = model_file(tmp_path, "bot-baseline")
    return run_db(h.services, lambda s: registry.ensure_serving_flow(
        s, baseline=path, by="test").id)


def by_url(listing) -> dict[str, dict]:
    return {p["url"]: p for p in listing["processes"]}


async def test_activation_and_rollback_load_the_model_into_every_process(
        h, baseline, fake_rasa, second_rasa, tmp_path):
    candidate = add_candidate(h.services, model_file(tmp_path, "candidate-1"), baseline)
    sam = await login(h.client, "sam")

    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert [p["serves_active"] for p in r.json()["processes"]] == [True, True]
    for rasa in (fake_rasa, second_rasa):
        assert [f.rsplit("/", 1)[-1] for f in rasa.model_loads] == ["candidate-1.tar.gz"]
        assert rasa.model_file == "candidate-1.tar.gz"

    listing = (await h.client.get("/api/v1/models", headers=sam)).json()
    assert listing["active_id"] == candidate
    assert [(p["url"], p["model_id"], p["model"], p["error"]) for p in listing["processes"]] == [
        (fake_rasa.url, candidate, "candidate-1", None),
        (second_rasa.url, candidate, "candidate-1", None)]

    r = await h.client.post("/api/v1/models/rollback", json={}, headers=sam)
    assert r.status_code == 200 and r.json()["id"] == baseline
    for rasa in (fake_rasa, second_rasa):
        assert rasa.model_file == "bot-baseline.tar.gz"
    listing = (await h.client.get("/api/v1/models", headers=sam)).json()
    assert {p["model_id"] for p in listing["processes"]} == {baseline}
    assert all(p["serves_active"] for p in listing["processes"])


async def test_a_process_down_at_activation_gets_the_model_when_it_is_back(
        h, baseline, fake_rasa, second_rasa, tmp_path):
    candidate = add_candidate(h.services, model_file(tmp_path, "candidate-2"), baseline)
    sam = await login(h.client, "sam")
    second_rasa.down = True

    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 200, r.text
    # Active, because a process serves it; the one that missed it says so.
    listing = (await h.client.get("/api/v1/models", headers=sam)).json()
    assert listing["active_id"] == candidate
    processes = by_url(listing)
    assert processes[fake_rasa.url]["serves_active"] is True
    behind = processes[second_rasa.url]
    assert behind["serves_active"] is False and behind["model_id"] is None
    assert f"did not load #{candidate}" in behind["error"]
    assert "unreachable" in behind["error"]
    assert second_rasa.model_loads == []

    # Still down: the check changes nothing and says why.
    assert await h.services.models.check() == 0
    assert "unreachable" in by_url(
        (await h.client.get("/api/v1/models", headers=sam)).json())[second_rasa.url]["error"]

    second_rasa.down = False  # back, still serving the model it started with
    assert await h.services.models.check() == 1
    assert second_rasa.model_file == "candidate-2.tar.gz"
    assert fake_rasa.model_loads == [fake_rasa.model_loads[0]]  # the first was not reloaded
    listing = (await h.client.get("/api/v1/models", headers=sam)).json()
    assert [(p["model_id"], p["serves_active"], p["error"]) for p in listing["processes"]] == [
        (candidate, True, None), (candidate, True, None)]
    # Nothing to do any more.
    assert await h.services.models.check() == 0
    assert len(second_rasa.model_loads) == 1


async def test_a_process_that_refuses_the_model_leaves_the_registry_as_it_was(
        h, baseline, fake_rasa, second_rasa, tmp_path):
    candidate = add_candidate(h.services, model_file(tmp_path, "candidate-3"), baseline)
    sam = await login(h.client, "sam")
    second_rasa.refuse_models = True

    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 502 and "did not load" in r.json()["detail"]
    assert run_db(h.services, lambda s: registry.active(s).id) == baseline
    # The process that took it serves the previous model again.
    assert [f.rsplit("/", 1)[-1] for f in fake_rasa.model_loads] == [
        "candidate-3.tar.gz", "bot-baseline.tar.gz"]
    assert fake_rasa.model_file == "bot-baseline.tar.gz"
    processes = by_url((await h.client.get("/api/v1/models", headers=sam)).json())
    assert processes[fake_rasa.url]["model_id"] == baseline
    assert processes[fake_rasa.url]["serves_active"] is True
    assert "400" in processes[second_rasa.url]["error"]


async def test_no_process_reached_changes_nothing(h, baseline, fake_rasa, second_rasa,
                                                  tmp_path):
    candidate = add_candidate(h.services, model_file(tmp_path, "candidate-4"), baseline)
    sam = await login(h.client, "sam")
    fake_rasa.down = second_rasa.down = True
    r = await h.client.post(f"/api/v1/models/{candidate}/activate", headers=sam)
    assert r.status_code == 502
    assert run_db(h.services, lambda s: registry.active(s).id) == baseline
    listing = (await h.client.get("/api/v1/models", headers=sam)).json()
    assert not any(p["serves_active"] for p in listing["processes"])


async def test_the_check_runs_once_per_cluster(h, baseline, fake_rasa, second_rasa):
    """While another live replica holds the lease (it is activating), the check leaves the
    processes alone; once the lease is free it brings them to the active model."""
    other = Member("switchboard-other", stale_s=30)

    def hold(session):
        cluster.heartbeat(session, replica_id=other.replica_id)
        assert cluster.claim_lease(session, name=RASA_MODELS_LEASE, member=other)
        session.commit()

    run_db(h.services, hold)
    assert await h.services.models.check() == 0
    assert fake_rasa.model_loads == second_rasa.model_loads == []
    # An activation waits for the lease (up to the load timeout), then is refused: 409.
    h.services.models.load_timeout_s = 0.3
    sam = await login(h.client, "sam")
    r = await h.client.post("/api/v1/models/rollback", json={"to_model_id": baseline},
                            headers=sam)
    assert r.status_code == 409

    def free(session):
        cluster.release_lease(session, name=RASA_MODELS_LEASE, member=other)
        session.commit()

    run_db(h.services, free)
    assert await h.services.models.check() == 2
    assert fake_rasa.model_file == second_rasa.model_file == "bot-baseline.tar.gz"


async def test_a_process_that_refuses_the_active_model_is_not_reloaded_at_every_check(
        h, baseline, fake_rasa, second_rasa):
    fake_rasa.model_file = "bot-baseline.tar.gz"
    second_rasa.model_file = "an-older-model.tar.gz"
    second_rasa.refuse_models = True
    assert await h.services.models.check() == 0
    assert len(second_rasa.model_loads) == 1 and fake_rasa.model_loads == []
    assert await h.services.models.check() == 0
    assert len(second_rasa.model_loads) == 1  # asked again only after REFUSED_RETRY_S
    sam = await login(h.client, "sam")
    processes = by_url((await h.client.get("/api/v1/models", headers=sam)).json())
    assert processes[fake_rasa.url]["serves_active"] is True
    assert processes[second_rasa.url]["serves_active"] is False
    assert processes[second_rasa.url]["error"] == (
        f"serves an-older-model.tar.gz, not #{baseline} bot-baseline")


@pytest.fixture
async def checking(two_rasas, pattern_triage):
    """The app with its own periodic check on, every 0.2 s."""
    async for harness in _harness(two_rasas(RASA_MODEL_CHECK_S=0.2), triage=pattern_triage,
                                  timers=False):
        yield harness


async def test_the_periodic_check_brings_a_restarted_process_back(checking, fake_rasa,
                                                                  second_rasa, tmp_path):
    """A process restarted with another model (its command line names the model the cluster
    started with) is given the active one by the switchboard's own loop."""
    path = model_file(tmp_path, "bot-baseline")
    fake_rasa.model_file = "bot-baseline.tar.gz"
    second_rasa.model_file = "an-older-model.tar.gz"
    run_db(checking.services, lambda s: registry.ensure_serving_flow(s, baseline=path, by="t"))
    deadline = asyncio.get_running_loop().time() + 10
    while second_rasa.model_file != "bot-baseline.tar.gz":
        assert asyncio.get_running_loop().time() < deadline, "not brought back"
        await asyncio.sleep(0.1)
    # The one that already served it was left alone.
    assert fake_rasa.model_loads == []
    # The check ran on the replica holding its lease (one per cluster).
    assert run_db(checking.services, lambda s: cluster.lease_holder(
        s, name=RASA_MODEL_CHECK_LEASE)) == checking.services.replica.id
    sam = await login(checking.client, "sam")
    deadline = asyncio.get_running_loop().time() + 10
    while not all(p["serves_active"] for p in (
            await checking.client.get("/api/v1/models", headers=sam)).json()["processes"]):
        assert asyncio.get_running_loop().time() < deadline, "not recorded"
        await asyncio.sleep(0.1)


def test_rasa_url_must_be_one_of_the_processes(make_settings, fake_rasa):
    with pytest.raises(ValueError, match="RASA_URL must be one of RASA_URLS"):
        make_settings(RASA_URLS="http://127.0.0.1:1")
    settings = make_settings(RASA_URLS=f" {fake_rasa.url}/ , http://127.0.0.1:1 ")
    assert settings.rasa_urls == [fake_rasa.url, "http://127.0.0.1:1"]
    assert make_settings().rasa_urls == [fake_rasa.url]


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_the_console_shows_which_model_each_process_serves(two_rasas, pattern_triage,
                                                           fake_rasa, second_rasa, tmp_path):
    """The operator activates with one process down: the console says the model serves, that
    one process did not load it yet, and lists both processes with what each serves."""
    from playwright.sync_api import expect, sync_playwright

    server = LiveServer(two_rasas(), triage=pattern_triage).start()
    try:
        services = server.app.state.services
        path = model_file(tmp_path, "bot-baseline")
        baseline = run_db(services, lambda s: registry.ensure_serving_flow(
            s, baseline=path, by="test").id)
        candidate = add_candidate(services, model_file(tmp_path, "candidate-5"), baseline)
        second_rasa.down = True
        errors: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.on("console",
                        lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + "/inbox/login?next=/operator")
                page.fill("input[name=handle]", "sam")
                page.fill("input[name=password]", "aurora-demo")
                page.click("button[type=submit]")
                page.wait_for_url("**/operator**", timeout=15_000)
                page.click("#tab-models")
                page.locator(f"[data-activate='{candidate}']").click()
                expect(page.locator("#models-status")).to_contain_text(
                    "1 of 2 Rasa processes did not load it yet", timeout=20_000)
                processes = page.locator("#rasa-processes li")
                expect(processes).to_have_count(2)
                first = page.locator(f"#rasa-processes li[data-url='{fake_rasa.url}']")
                expect(first).to_contain_text("serves the active model")
                expect(first).to_contain_text(f"#{candidate} candidate-5")
                behind = page.locator(f"#rasa-processes li[data-url='{second_rasa.url}']")
                expect(behind).to_contain_text("behind")
                expect(behind).to_contain_text("unreachable")
            finally:
                browser.close()
        # 401s of the sign-in page's own probes aside, the page ran without errors.
        assert not [e for e in errors if "401" not in e], errors
    finally:
        server.stop()
