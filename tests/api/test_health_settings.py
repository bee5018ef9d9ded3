"""/healthz readiness and the settings rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.main import create_app
from api.settings import DEFAULT_GRAPH_URL, Settings
from tests.api.fakes import free_port


async def test_healthz_ready(harness):
    r = await harness.client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert {k: v["ok"] for k, v in body["checks"].items()} == {
        "database": True, "rasa": True, "action_server": True, "triage": True}
    assert body["checks"]["rasa"]["model"] == "fake.tar.gz"
    assert body["messenger"] == "off"


async def test_healthz_503_until_rasa_and_actions_answer(make_settings, triage_engine):
    import httpx

    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app(make_settings(RASA_URL=dead, ACTION_SERVER_URL=dead + "/webhook"),
                     triage=triage_engine)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            r = await client.get("/healthz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["ok"] and not checks["rasa"]["ok"]
    assert not checks["action_server"]["ok"]


async def test_livez_200_while_rasa_and_actions_are_down(make_settings, triage_engine):
    """What the balancer checks: the process and its database, not Rasa (replicas stay in
    rotation and fans get holding replies while the bot is down)."""
    import httpx

    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app(make_settings(RASA_URL=dead, ACTION_SERVER_URL=dead + "/webhook"),
                     triage=triage_engine)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            live, ready = await client.get("/livez"), await client.get("/healthz")
    assert ready.status_code == 503
    assert live.status_code == 200
    assert live.json()["status"] == "ok" and live.json()["checks"]["database"]["ok"]


@pytest.mark.postgres
async def test_livez_503_when_the_database_refuses_connections(pg, pattern_triage):
    import httpx
    from sqlalchemy import text

    from tests.api.conftest import REPO_ROOT

    url = pg.create("sb_livez")
    name = url.rsplit("/", 1)[1]
    dead = f"http://127.0.0.1:{free_port()}"
    settings = Settings(_env_file=None, APP_ENV="local", DATABASE_URL=url, RASA_URL=dead,
                        ACTION_SERVER_URL=dead + "/webhook", HEALTH_TIMEOUT_S=2,
                        STAFF_FILE=str(REPO_ROOT / "data" / "staff.yml"))
    app = create_app(settings, triage=pattern_triage, timers=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            assert (await client.get("/livez")).status_code == 200
            with pg.engine.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :name"), {"name": name})
            try:
                r = await client.get("/livez")
            finally:
                with pg.engine.connect() as conn:
                    conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    assert r.status_code == 503
    assert r.json()["status"] == "down" and not r.json()["checks"]["database"]["ok"]


async def test_staff_seeded(harness):
    from api.staff import service as staff

    with harness.services.db.session() as session:
        noor = staff.get_by_handle(session=session, handle="noor")
        assert noor.title == "Welfare & safety lead" and "safety" in noor.skills
        assert noor.presence.value == "offline"


def test_defaults(monkeypatch):
    for name in ("APP_ENV", "DATABASE_URL", "SWITCHBOARD_PORT", "MESSENGER_GRAPH_URL"):
        monkeypatch.delenv(name, raising=False)
    # The service defaults to production: its placeholder secrets refuse to start ...
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(_env_file=None)
    # ... until local mode is chosen explicitly (as `make run` does).
    s = Settings(_env_file=None, APP_ENV="local")
    assert s.is_local and s.port == 8000
    assert Settings(_env_file=None, RASA_TOKEN="a-real-long-token-value",
                    AUTH_TOKEN_SECRET="a-real-long-secret-value-0123").app_env == "production"
    assert s.database_url.startswith("sqlite:///") and "/var/" in s.database_url
    assert s.messenger_graph_url == DEFAULT_GRAPH_URL and "/v2" in DEFAULT_GRAPH_URL
    assert not s.messenger_enabled


def test_placeholders_refused_outside_local():
    with pytest.raises(ValidationError, match="RASA_TOKEN"):
        Settings(_env_file=None, APP_ENV="production")
    with pytest.raises(ValidationError, match="MESSENGER_APP_SECRET"):
        Settings(_env_file=None, APP_ENV="production", RASA_TOKEN="a-real-long-token-value",
                 MESSENGER_APP_SECRET="changeme")
    with pytest.raises(ValidationError, match="AUTH_TOKEN_SECRET"):
        Settings(_env_file=None, APP_ENV="production", RASA_TOKEN="a-real-long-token-value")
    ok = Settings(_env_file=None, APP_ENV="production", RASA_TOKEN="a-real-long-token-value",
                  AUTH_TOKEN_SECRET="a-real-long-secret-value-0123")
    assert not ok.is_local


def test_no_io_at_import():
    import subprocess
    import sys

    code = ("import sys, api.main, api.__main__; "
            "assert 'rasa' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"DATABASE_URL": "sqlite:////nonexistent/dir/x.db", "PATH": ""})
    assert out.stdout.strip() == "ok", out.stderr


async def test_healthz_503_while_triage_is_missing(make_settings, tmp_path):
    import httpx

    app = create_app(make_settings(TRIAGE_MODEL_DIR=str(tmp_path / "no-model")), timers=False)
    async with app.router.lifespan_context(app):
        await app.state.services.handoff.wait_ready(30)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            r = await client.get("/healthz")
    assert r.status_code == 503
    triage = r.json()["checks"]["triage"]
    assert triage["ok"] is False and "FileNotFoundError" in triage["error"]
