"""Fixtures for the switchboard tests.

The database backend comes from ``SWITCHBOARD_TEST_DB`` (``sqlite``, the default, or
``postgresql``): `make test-api` runs the suite once on each. PostgreSQL tests use a throwaway
database created for the session on 127.0.0.1:5432 (trust auth, user postgres).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from api.main import create_app, migrate  # noqa: E402
from api.models import Base  # noqa: E402
from api.settings import Settings  # noqa: E402
from tests.api.fakes import FakeActionServer, FakeGraph, FakeRasa, free_port  # noqa: E402
from tests.support.triage import load_trained_triage  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "SWITCHBOARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKEND = os.environ.get("SWITCHBOARD_TEST_DB", "sqlite")
APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "test-verify-token"
PAGE_TOKEN = "test-page-token"


def pytest_report_header(config) -> str:
    return f"switchboard test database: {BACKEND}"


# Fixtures through which a test reaches the database under test (directly or through the app).
DATABASE_FIXTURES = frozenset({"database_url", "template_db", "pg"})


def pytest_collection_modifyitems(config, items) -> None:
    """On PostgreSQL run only what can differ there: tests that reach a database. Pure tests
    (triage, routing policy, the gate, ...) already ran on the SQLite pass."""
    if BACKEND != "postgresql":
        return
    keep, drop = [], []
    for item in items:
        uses_db = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        (keep if uses_db else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class PgDatabases:
    """Create and drop throwaway PostgreSQL databases."""

    def __init__(self) -> None:
        self.engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, prefix: str = "sb_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


@pytest.fixture(scope="session")
def pg() -> Iterator[PgDatabases]:
    try:
        dbs = PgDatabases()
        with dbs.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # a clear failure, not a silent skip
        pytest.fail(f"PostgreSQL is not answering at {PG_ADMIN_URL} ({exc}); run `make services`")
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory, request) -> str:
    """A migrated database for the session (SQLite file, or a PostgreSQL database)."""
    if BACKEND == "postgresql":
        url = request.getfixturevalue("pg").create()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'template.db'}"
    migrate(url)
    return url


@pytest.fixture
def database_url(template_db: str, tmp_path: Path) -> str:
    """A clean, migrated database for one test."""
    if BACKEND == "postgresql":
        engine = create_engine(template_db)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return template_db
    src = Path(template_db.removeprefix("sqlite:///"))
    dst = tmp_path / "switchboard.db"
    shutil.copyfile(src, dst)
    return f"sqlite:///{dst}"


# The bot's clock for the real-Rasa tests: a Thursday in the season (as tests/bot uses), so the
# answers about a night are the in-season ones whatever today's date is.
BOT_FROZEN_NOW = "2027-07-15T02:00:00+02:00"


@pytest.fixture(scope="session")
def real_bot():
    """The real Rasa and action servers with the trained model, shared by the session.

    Started only when a test asks for it (the ``rasa`` and ``browser`` tests); a missing model is
    a failure (RuntimeError: run `make train`), not a skip.
    """
    from tests.support.rasa_servers import start_bot_servers

    with start_bot_servers(frozen_now=BOT_FROZEN_NOW) as servers:
        yield servers


@pytest.fixture
def bot_settings(make_settings, real_bot):
    """Settings for a switchboard talking to the real bot."""

    def _make(**overrides) -> Settings:
        values = dict(RASA_URL=real_bot.rasa_url, RASA_TOKEN=real_bot.token,
                      ACTION_SERVER_URL=real_bot.actions_url, RASA_TIMEOUT_S=30)
        values.update(overrides)
        return make_settings(**values)

    return _make


@pytest.fixture(scope="session")
def triage_engine():
    """The trained triage model of models/triage (`make train-triage`: the same model on every
    clone, trained on the data the repository carries). Tests that run the app through it depend
    on what that model thinks of their messages; a missing model is a failure, not a skip."""
    return load_trained_triage()


@pytest.fixture(scope="session")
def pattern_triage():
    """Triage without the learned models: only the deterministic patterns and rules decide, so
    a test's outcome is fixed by its own messages (no model judges made-up strings)."""
    from api.triage.engine import Triage

    return Triage.load(None, require_model=False)


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    server = FakeRasa().start()
    yield server
    server.stop()


@pytest.fixture
def fake_actions() -> Iterator[FakeActionServer]:
    server = FakeActionServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    server = FakeGraph().start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(database_url, fake_rasa, fake_actions):
    def _make(**overrides) -> Settings:
        values = dict(
            APP_ENV="local",
            DATABASE_URL=database_url,
            RASA_URL=fake_rasa.url,
            RASA_TOKEN=FakeRasa.TOKEN,
            ACTION_SERVER_URL=fake_actions.url + "/webhook",
            RASA_TIMEOUT_S=1.0,
            RELAY_RETRY_BASE_S=0.2,
            RELAY_RETRY_MAX_S=0.5,
            RELAY_POLL_S=0.1,
            STAFF_FILE=str(REPO_ROOT / "data" / "staff.yml"),
            DB_AUTO_MIGRATE=False,
            MESSENGER_BACKOFF_S=0.01,
            TRIAGE_SEMANTIC_PROCESS=False,  # one spawned process per test app is too slow
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return _make


@pytest.fixture
def messenger_settings(make_settings, fake_graph):
    def _make(**overrides) -> Settings:
        return make_settings(
            MESSENGER_APP_SECRET=APP_SECRET, MESSENGER_VERIFY_TOKEN=VERIFY_TOKEN,
            MESSENGER_PAGE_TOKEN=PAGE_TOKEN, MESSENGER_GRAPH_URL=fake_graph.url + "/v23.0",
            **overrides,
        )

    return _make


class AppHarness:
    def __init__(self, app, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.services = app.state.services

    async def settle(self, timeout: float = 5.0) -> None:
        await self.services.relay.drain(timeout)


async def _harness(settings: Settings, **app_kw) -> AsyncIterator[AppHarness]:
    app = create_app(settings, **app_kw)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield AppHarness(app, client)


@pytest.fixture
def clock():
    from api.clock import FakeClock

    return FakeClock()


@pytest.fixture
async def harness(make_settings, triage_engine, clock) -> AsyncIterator[AppHarness]:
    """The app in-process (lifespan run), talking to the fake Rasa; the handoff timers run only
    when a test calls ``services.handoff.check_timers()`` (fake clock)."""
    async for h in _harness(make_settings(), triage=triage_engine, clock=clock, timers=False):
        yield h


@pytest.fixture
async def messenger_harness(messenger_settings, triage_engine,
                            clock) -> AsyncIterator[AppHarness]:
    async for h in _harness(messenger_settings(), triage=triage_engine, clock=clock,
                            timers=False):
        yield h


class LiveServer:
    """The switchboard under uvicorn on a free 127.0.0.1 port, in a thread."""

    def __init__(self, settings: Settings, *, log_config: dict | None = None, **app_kw) -> None:
        self.port = free_port()
        self.app = create_app(settings, **app_kw)
        # log_config: the switchboard's own (api.logs.log_config), as `python -m api` applies it
        logging = {"log_config": log_config, "log_level": None} if log_config else {
            "log_level": "warning"}
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="on",
                                ws_max_size=settings.websocket_max_bytes, **logging)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("switchboard did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(make_settings, triage_engine) -> Iterator[LiveServer]:
    server = LiveServer(make_settings(), triage=triage_engine).start()
    yield server
    server.stop()


DEMO_PASSWORD = "aurora-demo"


async def login(client: httpx.AsyncClient, handle: str,
                password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Bearer headers for a demo staff account."""
    r = await client.post("/api/v1/auth/login", json={"handle": handle, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def go_online(client: httpx.AsyncClient, headers: dict[str, str],
                    presence: str = "online") -> dict:
    r = await client.put("/api/v1/staff/me/presence", json={"presence": presence},
                         headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def run_db(services, fn, **kw):
    """Run a sync DB function (for assertions) with a fresh session."""
    with services.db.session() as session:
        return fn(session, **kw)


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
