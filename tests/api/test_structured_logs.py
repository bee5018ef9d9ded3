"""LOG_FORMAT=json: the whole log of a scripted evening, as `python -m api` configures it, parsed
line by line as JSON; request ids (the balancer's, passed through) and conversation ids on the
lines of each turn; no fan's words and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from api.logs import ContextIds, JsonLines, RedactSecrets, log_config
from tests.api.conftest import LiveServer
from tests.api.fakes import FakeRasa
from tests.api.scripted_run import SECRET_WORD, scripted_run

STAFF_TEXT = "Where did you last see her"
FIELDS = {"time", "level", "logger", "message", "request_id", "conversation_id"}


@pytest.fixture
def json_server(make_settings, triage_engine):
    """A live switchboard logging JSON at INFO into a buffer (logging restored afterwards)."""
    settings = make_settings(LOG_FORMAT="json", LOG_LEVEL="info")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    server = LiveServer(settings, log_config=log_config(settings), triage=triage_engine)
    buffer = io.StringIO()
    for name in (None, "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.setStream(buffer)
    server.start()
    try:
        yield server, buffer
    finally:
        server.stop()
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        root.handlers[:], root.level = saved
        access = logging.getLogger("uvicorn.access")
        access.handlers[:] = []
        access.propagate = True


async def test_json_lines_with_ids_and_no_fan_text(json_server, fake_rasa):
    server, buffer = json_server
    sent = await scripted_run(server, fake_rasa)
    text = buffer.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert len(lines) > 30
    assert all(isinstance(line, dict) and FIELDS <= set(line) for line in lines)

    # No fan's words, no staff member's words, no secret: anywhere in the log.
    assert SECRET_WORD not in text.lower()
    assert STAFF_TEXT not in text
    assert not [t for t in sent.texts if t in text]
    # (local mode's banner names the public demo password on purpose; real secrets never show)
    assert FakeRasa.TOKEN not in text

    # Each REST call's lines carry the balancer's request id, and from the moment its message
    # is stored, its conversation's id.
    for request_id, sender in sent.requests.items():
        conversation = sent.conversations[sender]
        mine = [line for line in lines if line["request_id"] == request_id]
        assert any(line["logger"] == "uvicorn.access" for line in mine), request_id
        stored = next(i for i, line in enumerate(mine)
                      if line["logger"] == "api.flows" and "stored" in line["message"])
        assert all(line["conversation_id"] == conversation for line in mine[stored:]), mine
    # A turn's lines: the relay's lines name their conversation, and a request id (a retry in
    # the background gets one of its own).
    relay = [line for line in lines if line["logger"].startswith("api.relay")]
    assert relay and all(line["conversation_id"] and line["request_id"] for line in relay)
    outage = sent.conversations["rest-5"]
    assert any(line["conversation_id"] == outage and "failed" in line["message"]
               for line in relay)
    # Web chat: the socket's lines name the conversation too.
    webchat = [line for line in lines if line["logger"] == "api.channels.webchat.socket"]
    assert webchat and all(line["conversation_id"] and line["request_id"] for line in webchat)


def test_json_redacts_secrets_in_tracebacks():
    """The redaction filter runs before the JSON formatter: a secret in an exception is gone
    from the JSON line too (the library would otherwise render the traceback afresh)."""
    secret = "rasa-token-0123456789"
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactSecrets([secret]))
    handler.setFormatter(JsonLines())
    log = logging.getLogger("tests.json_redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"GET http://rasa/?token={secret} refused")
        except RuntimeError:
            log.exception("turn failed with %s", secret, extra={"leak": secret})
    finally:
        log.removeHandler(handler)
    [line] = [json.loads(x) for x in buffer.getvalue().splitlines()]
    assert secret not in buffer.getvalue()
    assert line["message"] == "turn failed with [redacted]"
    assert "RuntimeError" in line["exc_info"] and "leak" not in line


async def test_a_background_retry_has_its_own_request_id(harness, fake_rasa):
    """A turn the relay retries outside any request still has a request id on its lines (its
    own), besides its conversation id."""
    import asyncio

    records: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = records.append
    collector.addFilter(ContextIds())
    relay_log = logging.getLogger("api.relay.relay")
    relay_log.addHandler(collector)
    fake_rasa.mode = "error"
    try:
        r = await harness.client.post("/webhooks/rest/webhook", headers={"X-Request-ID": "lb-1"},
                                      json={"sender": "fan-r", "message": "hello"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "lb-1"
        for _ in range(100):  # the retry loop fails it again, in the background
            if len(records) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        fake_rasa.mode = "ok"
        relay_log.removeHandler(collector)
    first, retry = records[:2]
    assert first.request_id == "lb-1" and first.conversation_id is not None
    assert retry.request_id not in (None, "lb-1")
    assert retry.conversation_id == first.conversation_id


async def test_request_id_made_up_when_missing_or_malformed(harness):
    given = await harness.client.get("/metrics", headers={"X-Request-ID": "bad id\" forged"})
    made = given.headers["x-request-id"]
    assert made != "bad id\" forged" and len(made) == 32
    again = await harness.client.get("/metrics")
    assert again.headers["x-request-id"] not in (None, made)


async def test_spacy_lines_go_through_our_handlers(make_settings):
    """spaCy gives its logger a stderr handler of its own when imported; once the switchboard
    has loaded triage, spaCy's lines reach only the switchboard's handlers (JSON, redacted)."""
    from api.main import create_app

    spacy_log = logging.getLogger("spacy")
    spacy_log.addHandler(logging.StreamHandler())  # as spacy.util does at import
    app = create_app(make_settings(TRIAGE_MODEL_DIR="/nonexistent"))  # the load fails fast
    async with app.router.lifespan_context(app):
        await app.state.services.handoff.wait_ready(30)
    assert spacy_log.handlers == [] and spacy_log.propagate
