"""Secrets stay secret: logs (client libraries, access log, safety net), /healthz, the action
server's interface and the environment of training subprocesses.

The whole `make run` session is grepped in tests/api/test_secrets_in_logs.py (real Rasa)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.channels.messenger.signature import sign
from api.logs import QUIET_LOGGERS, REDACTED, RedactSecrets, log_config, secret_values
from api.main import create_app
from api.settings import Settings
from api.training.runner import TrainingRunner
from scripts import bot_model
from scripts import run as launcher
from tests.api.conftest import APP_SECRET, PAGE_TOKEN, REPO_ROOT, VERIFY_TOKEN, _harness, free_port
from tests.api.test_messenger import event, payload

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", *QUIET_LOGGERS)


@pytest.fixture
def server_logging() -> Iterator[Callable[[Settings], io.StringIO]]:
    """``apply(settings)``: the switchboard's logging as ``python -m api`` sets it up, with its
    handlers writing into the returned buffer. The previous logging comes back afterwards."""
    saved = {name: (lg.level, lg.handlers[:], lg.filters[:], lg.propagate)
             for name in LOGGERS for lg in [logging.getLogger(name)]}
    buffer = io.StringIO()

    def apply(settings: Settings) -> io.StringIO:
        logging.config.dictConfig(log_config(settings))
        redirect(buffer)
        return buffer

    yield apply
    for name, (level, handlers, filters, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers[:], lg.filters[:], lg.propagate = handlers, filters, propagate


def redirect(buffer: io.StringIO) -> None:
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setStream(buffer)


# -- the safety net -----------------------------------------------------------------------------
def test_secret_values_come_from_the_settings(make_settings):
    settings = make_settings(
        APP_ENV="production", RASA_TOKEN="rasa-token-0123456789",
        AUTH_TOKEN_SECRET="auth-secret-0123456789", MESSENGER_APP_SECRET="app-secret-0123",
        MESSENGER_VERIFY_TOKEN="verify-0123", MESSENGER_PAGE_TOKEN="page-token-0123",
        DATABASE_URL="postgresql+psycopg://desk:db-p%40ssword@db.internal/desk",
        ALERT_WEBHOOK_URL="https://hooks.example.org/services/T0/B0/abcdef",
        DEMO_STAFF_PASSWORD="aurora-demo")
    found = secret_values(settings)
    assert {"rasa-token-0123456789", "auth-secret-0123456789", "app-secret-0123",
            "verify-0123", "page-token-0123", "db-p@ssword", "db-p%40ssword",
            "https://hooks.example.org/services/T0/B0/abcdef"} <= found
    assert "aurora-demo" not in found  # public; the local-mode banner names it


def test_redaction_covers_messages_arguments_urls_and_tracebacks():
    guard = RedactSecrets(["page-token-0123"])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(guard)
    logger = logging.getLogger("tests.secrets.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling %s (%d tries)",
                       httpx.URL("https://rasa.local/status?include=all&token=tok-abc123"), 3)
        logger.warning("the page token is page-token-0123")
        try:
            raise RuntimeError("Graph said no to access_token=page-token-0123")
        except RuntimeError:
            logger.exception("send failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "tok-abc123" not in text and "page-token-0123" not in text, text
    assert f"status?include=all&token={REDACTED} (3 tries)" in text
    assert f"the page token is {REDACTED}" in text
    assert "RuntimeError: Graph said no" in text  # the traceback is still there


# -- the running server: access log, client loggers, /healthz -------------------------------------
class ThreadedServer:
    """The switchboard under uvicorn in a thread, configured the way ``python -m api`` is."""

    def __init__(self, app, settings: Settings, buffer: io.StringIO) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(app, host="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]),
                                log_config=log_config(settings),
                                log_level=settings.log_level, lifespan="on")
        redirect(buffer)  # uvicorn.Config applied the logging config just now
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_handshake_and_send_api_leave_no_secret_in_the_logs(messenger_settings, fake_graph,
                                                           fake_rasa, pattern_triage,
                                                           server_logging):
    settings = messenger_settings(LOG_LEVEL="info")
    buffer = server_logging(settings)
    app = create_app(settings, triage=pattern_triage, timers=False)
    with ThreadedServer(app, settings, buffer) as server, httpx.Client(timeout=10) as http:
        r = http.get(server.url + "/webhooks/messenger", params={
            "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "4242"})
        assert r.status_code == 200 and r.text == "4242"
        raw = json.dumps(payload({"messaging": [event(text="hello")]})).encode()
        r = http.post(server.url + "/webhooks/messenger", content=raw, headers={
            "content-type": "application/json", "x-hub-signature-256": sign(APP_SECRET, raw)})
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while not fake_graph.messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_graph.messages(), "no Send API call"
    logged = buffer.getvalue()
    assert 'GET /webhooks/messenger?... HTTP/1.1" 200' in logged, logged  # the access log ran
    for secret in (VERIFY_TOKEN, PAGE_TOKEN, APP_SECRET, settings.rasa_token):
        assert secret not in logged, f"{secret} logged:\n{logged}"


@pytest.mark.parametrize("failure", ["wrong token", "unreachable"])
async def test_healthz_shows_no_token_whatever_fails(make_settings, pattern_triage,
                                                    server_logging, failure):
    token = "rasa-token-that-must-not-show-0123"
    overrides = {"RASA_TOKEN": token, "LOG_LEVEL": "info"}
    if failure == "unreachable":
        overrides["RASA_URL"] = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(**overrides)
    buffer = server_logging(settings)
    async for h in _harness(settings, triage=pattern_triage, timers=False):
        r = await h.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["rasa"] == {
        "ok": False, "error": "http_status" if failure == "wrong token" else "unreachable"}
    logged = buffer.getvalue()
    assert "Messenger off" in logged  # the server's logging was live
    assert token not in r.text and token not in logged, logged


# -- the action server's interface ----------------------------------------------------------------
def test_launcher_binds_the_action_server_to_loopback():
    assert launcher.action_server_env({"PATH": "/bin"}) == {
        "PATH": "/bin", "SANIC_HOST": "127.0.0.1", "SANIC_KEEP_ALIVE_TIMEOUT": "20"}
    assert launcher.action_server_env({"ACTION_HOST": "10.0.0.5"})["SANIC_HOST"] == "10.0.0.5"


def test_rasa_processes_get_the_log_level_in_capitals():
    """Rasa exits on "Unknown level" with the switchboard's lower-case LOG_LEVEL."""
    assert launcher.bot_env({"LOG_LEVEL": "info", "X": "1"}) == {"LOG_LEVEL": "INFO", "X": "1"}
    assert launcher.bot_env({"X": "1"}) == {"X": "1"}
    assert launcher.action_server_env({"LOG_LEVEL": "debug"})["LOG_LEVEL"] == "DEBUG"


# -- training subprocesses ------------------------------------------------------------------------
SECRETS_IN_ENV = {
    "AUTH_TOKEN_SECRET": "auth-secret-in-env-0123", "RASA_TOKEN": "rasa-token-in-env-0123",
    "MESSENGER_APP_SECRET": "app-secret-in-env-0123", "MESSENGER_PAGE_TOKEN": "page-in-env-0123",
    "MESSENGER_VERIFY_TOKEN": "verify-in-env-0123", "DEMO_STAFF_PASSWORD": "demo-pw-in-env-0123",
    "DATABASE_URL": "postgresql+psycopg://desk:db-pw-in-env-0123@db/desk",
    "ALERT_WEBHOOK_URL": "https://hooks.example.org/in-env-0123",
    "TF_API_KEY": "tf-key-in-env-0123",  # an allowed prefix, but a secret's name
}


def test_training_env_is_an_allow_list():
    env = bot_model.training_env(Path("/opt/bot-venv"), {
        **SECRETS_IN_ENV, "PATH": "/usr/bin", "HOME": "/home/desk", "LC_ALL": "C.UTF-8",
        "TF_NUM_INTEROP_THREADS": "1"}, project=Path("/srv/desk"))
    assert env["PATH"] == "/opt/bot-venv/bin:/usr/bin"
    assert env["PYTHONPATH"] == "/srv/desk" and env["VIRTUAL_ENV"] == "/opt/bot-venv"
    assert env["HOME"] == "/home/desk" and env["LC_ALL"] == "C.UTF-8"
    assert env["TF_NUM_INTEROP_THREADS"] == "1"
    assert not set(SECRETS_IN_ENV) & set(env)


async def test_training_subprocess_sees_no_secret(make_settings, monkeypatch):
    """What a training step's process really receives (it prints its environment)."""
    for name, value in SECRETS_IN_ENV.items():
        monkeypatch.setenv(name, value)
    runner = TrainingRunner(None, make_settings(BOT_VENV=str(Path(sys.executable).parent.parent),
                                                BOT_PROJECT_DIR=str(REPO_ROOT)))
    tail: deque[str] = deque(maxlen=400)
    await runner._step(None, "validating", tail, [
        sys.executable, "-c", "import os\nfor k, v in os.environ.items(): print(f'{k}={v}')"])
    seen = dict(line.split("=", 1) for line in tail if "=" in line)
    assert "PATH" in seen and seen["PYTHONPATH"] == str(REPO_ROOT)
    assert not set(SECRETS_IN_ENV) & set(seen), sorted(seen)
    assert not any(value in "\n".join(tail) for value in SECRETS_IN_ENV.values())
