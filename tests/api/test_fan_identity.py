"""Fan identity on the channels and what reaches Rasa (issue 14): the REST credential, message ids
scoped to the fan, Rasa commands only from offered buttons, long Messenger texts triaged whole."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from sqlalchemy import func, select

from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, MessageKind, Priority, RelayStatus
from api.flows import WORD_JOINER
from tests.api.conftest import _harness, login, run_db, wait_for
from tests.api.test_messenger import event, payload, post_signed
from tests.api.test_webchat import Widget

URL = "/webhooks/rest/webhook"
SHARED = "backend-shared-secret-0123456789"
JWT_KEY = "fan-token-signing-key-0123456789"
OTHER_KEY = "another-signing-key-0123456789-abcdef"


def _incoming(services) -> list[Message]:
    return run_db(services, lambda s: s.scalars(
        select(Message).where(Message.kind == MessageKind.incoming).order_by(Message.id)).all())


def _token(sub, key=JWT_KEY, ttl=300, **claims):
    return jwt.encode({"sub": sub, "exp": int(time.time()) + ttl, **claims}, key,
                      algorithm="HS256")


@pytest.fixture
async def closed_harness(make_settings, triage_engine, clock):
    """The REST channel outside local mode, with both credentials configured."""
    settings = make_settings(APP_ENV="production", RASA_TOKEN="a-real-long-token-value",
                             AUTH_TOKEN_SECRET="a-real-long-auth-secret-value",
                             REST_SHARED_SECRET=SHARED, REST_JWT_SECRET=JWT_KEY)
    async for h in _harness(settings, triage=triage_engine, clock=clock, timers=False):
        yield h


# -- the REST credential ---------------------------------------------------------------------
async def test_rest_outside_local_mode_needs_a_credential(closed_harness, fake_rasa):
    c = closed_harness.client
    body = {"sender": "noor-fan", "message": "hello"}
    for headers in ({}, {"authorization": "Bearer wrong-secret"},
                    {"authorization": "Basic " + SHARED},
                    {"authorization": "Bearer " + _token("ana", key=OTHER_KEY)},
                    {"authorization": "Bearer " + _token("ana", ttl=-60)},
                    {"authorization": "Bearer " + jwt.encode({"sub": "ana"}, JWT_KEY)}):  # no exp
        r = await c.post(URL, json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith('Bearer realm="rest"')
        assert isinstance(r.json()["detail"], str)
    assert _incoming(closed_harness.services) == [] and fake_rasa.calls == []


async def test_rest_shared_secret_lets_the_backend_name_the_sender(closed_harness, fake_rasa):
    r = await closed_harness.client.post(URL, json={"sender": "ana", "message": "hello"},
                                         headers={"authorization": f"Bearer {SHARED}"})
    assert r.status_code == 200 and r.json() == [{"recipient_id": "ana", "text": "echo: hello"}]
    assert fake_rasa.calls[-1]["sender"] == "rest-ana"


async def test_rest_jwt_names_the_fan(closed_harness, fake_rasa):
    c = closed_harness.client
    auth = {"authorization": "Bearer " + _token("ana")}
    r = await c.post(URL, json={"message": "hello"}, headers=auth)  # no body sender needed
    assert r.status_code == 200 and r.json() == [{"recipient_id": "ana", "text": "echo: hello"}]
    r = await c.post(URL, json={"sender": "ana", "message": "again"}, headers=auth)
    assert r.status_code == 200 and r.json()[0]["text"] == "echo: again"
    # A token for ana cannot write as (or collect the replies of) another fan.
    r = await c.post(URL, json={"sender": "noor-fan", "message": "hi"}, headers=auth)
    assert r.status_code == 403 and r.json() == {"detail": "sender does not match the token"}
    assert [call["sender"] for call in fake_rasa.calls] == ["rest-ana", "rest-ana"]


async def test_rest_local_mode_stays_open_but_checks_a_sent_credential(make_settings,
                                                                       triage_engine, clock):
    settings = make_settings(REST_JWT_SECRET=JWT_KEY)
    async for h in _harness(settings, triage=triage_engine, clock=clock, timers=False):
        r = await h.client.post(URL, json={"sender": "me", "message": "hi"})  # README's curl
        assert r.status_code == 200
        r = await h.client.post(URL, json={"sender": "me", "message": "hi"},
                                headers={"authorization": "Bearer not-a-token"})
        assert r.status_code == 401


def test_rest_secrets_refused_as_placeholders_outside_local_mode():
    from api.settings import Settings

    base = dict(_env_file=None, APP_ENV="production", RASA_TOKEN="a-real-long-token-value",
                AUTH_TOKEN_SECRET="a-real-long-auth-secret-value")
    for name in ("REST_SHARED_SECRET", "REST_JWT_SECRET"):
        with pytest.raises(ValueError, match=name):
            Settings(**base, **{name: "changeme"})
        with pytest.raises(ValueError, match=name):
            Settings(**base, **{name: "fifteen-chars-x"})
    with pytest.raises(ValueError, match="REST_JWT_SECRET"):  # HS256 wants 256 bits
        Settings(**base, REST_JWT_SECRET="x" * 31)
    ok = Settings(**base, REST_SHARED_SECRET=SHARED, REST_JWT_SECRET=JWT_KEY)
    assert (ok.rest_shared_secret, ok.rest_jwt_secret) == (SHARED, JWT_KEY)


# -- message ids scoped to the fan -----------------------------------------------------------
async def test_rest_message_ids_are_per_fan(harness, fake_rasa):
    c = harness.client
    for sender in ("ana", "bea"):
        r = await c.post(URL, json={"sender": sender, "message": f"hi from {sender}",
                                    "metadata": {"message_id": "1"}})
        assert r.json() == [{"recipient_id": sender, "text": f"echo: hi from {sender}"}]
    again = await c.post(URL, json={"sender": "ana", "message": "hi from ana",
                                    "metadata": {"message_id": "1"}})
    # ana's own retry: deduplicated, answered with her message's replies again
    assert again.status_code == 200 and again.json() == [
        {"recipient_id": "ana", "text": "echo: hi from ana"}]
    stored = _incoming(harness.services)
    assert [(m.text, m.fan_message_id) for m in stored] == [("hi from ana", "1"),
                                                            ("hi from bea", "1")]
    assert len(fake_rasa.calls) == 2


async def test_webchat_message_ids_are_per_session(live_server, fake_rasa):
    one, two = Widget(live_server.url), Widget(live_server.url)
    await one.connect()
    await two.connect()
    try:
        a = await one.session("session-one-aaaaaaaa")
        b = await two.session("session-two-bbbbbbbb")
        await one.say("first words", a, message_id="1")
        assert (await one.next())["text"] == "echo: first words"
        await two.say("other words", b, message_id="1")
        assert (await two.next())["text"] == "echo: other words"
        await one.say("first words", a, message_id="1")  # a re-send after a reconnect
        with pytest.raises(asyncio.TimeoutError):
            await one.next(timeout=0.7)
    finally:
        await one.close()
        await two.close()
    assert len(_incoming(live_server.app.state.services)) == 2
    assert len(fake_rasa.calls) == 2


async def test_messenger_mids_are_scoped_to_the_fan(messenger_harness, fake_rasa):
    await post_signed(messenger_harness.client, payload({"messaging": [
        event(psid="psid-1", mid="same-mid"), event(psid="psid-2", mid="same-mid"),
        event(psid="psid-1", mid="same-mid")]}))
    await wait_for(lambda: len(fake_rasa.calls) == 2, 5)
    await messenger_harness.settle()
    stored = _incoming(messenger_harness.services)
    assert len(stored) == 2 and len({m.conversation_id for m in stored}) == 2


# -- Rasa commands ---------------------------------------------------------------------------
async def test_rest_typed_command_reaches_rasa_as_text(harness, fake_rasa):
    r = await harness.client.post(URL, json={"sender": "ana", "message": "/request_human"})
    assert r.status_code == 200
    sent = fake_rasa.calls[-1]["message"]
    assert sent == WORD_JOINER + "/request_human" and not sent.strip().startswith("/")
    conv = run_db(harness.services, lambda s: s.scalars(select(Conversation)).one())
    assert conv.status == ConversationStatus.bot  # no intent command, no handoff by the back door
    assert _incoming(harness.services)[0].text == "/request_human"  # stored as the fan wrote it


async def test_rest_offered_button_reaches_rasa_as_command(harness, fake_rasa):
    c = harness.client
    await c.post(URL, json={"sender": "ana", "message": "buttons please"})
    await c.post(URL, json={"sender": "ana", "message": "/ask_tickets"})
    assert fake_rasa.calls[-1]["message"] == "/ask_tickets"
    # Another fan was never offered the button: their "/ask_tickets" is text.
    await c.post(URL, json={"sender": "bea", "message": "/ask_tickets"})
    assert fake_rasa.calls[-1]["message"] == WORD_JOINER + "/ask_tickets"
    pressed = [m.payload for m in _incoming(harness.services) if m.text == "/ask_tickets"]
    assert pressed[0] == {"command": {"title": "Tickets"}} and pressed[1] is None


async def test_inbox_shows_what_the_fan_wrote_or_the_button_title(harness):
    c = harness.client
    await c.post(URL, json={"sender": "ana", "message": "buttons please"})
    await c.post(URL, json={"sender": "ana", "message": "/ask_tickets"})
    await c.post(URL, json={"sender": "ana", "message": "/request_human{\"x\": 1}"})
    conv_id = run_db(harness.services, lambda s: s.scalars(select(Conversation.id)).one())
    headers = await login(c, "laura")  # a supervisor: reads every thread
    r = await c.get(f"/api/v1/conversations/{conv_id}/context", headers=headers)
    assert r.status_code == 200, r.text
    fan = [t["text"] for t in r.json()["transcript"] if t["sender_type"] == "fan"]
    assert fan == ["buttons please", "Tickets", "/request_human{\"x\": 1}"]


async def test_webchat_commands(live_server, fake_rasa):
    w = Widget(live_server.url)
    await w.connect()
    try:
        sid = await w.session("commands-session-1")
        await w.say("/greet", sid)  # the widget's initPayload
        assert (await w.next())["text"] == "echo: /greet"
        await w.say("/request_human", sid)  # typed, never offered
        await w.next()
        await w.say("buttons", sid)
        await w.next()
        await w.say("/request_human", sid)  # the quick reply pressed
        await w.next()
    finally:
        await w.close()
    sent = [call["message"] for call in fake_rasa.calls]
    assert sent == ["/greet", WORD_JOINER + "/request_human", "buttons", "/request_human"]
    stored = _incoming(live_server.app.state.services)
    assert [(m.payload or {}).get("command") for m in stored] == [
        {"title": None}, None, None, {"title": "Talk to a person"}]


async def test_messenger_quick_replies_and_postbacks_are_commands(messenger_harness, fake_rasa):
    typed = event(mid="m-typed", text="/request_human")
    quick = event(mid="m-quick", text="Talk to a person",
                  quick_reply={"payload": "/request_human"})
    postback = {"sender": {"id": "psid-1"}, "recipient": {"id": "page-1"},
                "timestamp": 1700000000001,
                "postback": {"mid": "m-postback", "title": "Get started", "payload": "/greet"}}
    for ev in (typed, quick, postback):
        await post_signed(messenger_harness.client, payload({"messaging": [ev]}))
        await messenger_harness.settle()
    sent = [call["message"] for call in fake_rasa.calls]
    assert sent == [WORD_JOINER + "/request_human", "/request_human", "/greet"]
    stored = _incoming(messenger_harness.services)
    assert [(m.payload or {}).get("command") for m in stored] == [
        None, {"title": "Talk to a person"}, {"title": "Get started"}]


# -- long Messenger texts --------------------------------------------------------------------
async def test_long_messenger_text_is_triaged_whole(messenger_harness, fake_rasa):
    urgent = "my friend collapsed at the bar and is not breathing, please help"
    text = "word " * 900 + urgent  # over MAX_MESSAGE_CHARS (4000), the emergency at the end
    assert len(text) > 4000
    await post_signed(messenger_harness.client, payload({"messaging": [
        event(mid="m-long", text=text)]}))
    services = messenger_harness.services

    def handed_off(s):
        conv = s.scalars(select(Conversation)).first()
        return conv is not None and conv.priority == Priority.urgent

    await wait_for(lambda: run_db(services, handed_off), 10)
    stored = _incoming(services)[0]
    assert stored.text == text  # kept whole for the person who takes it
    assert stored.relay_status == RelayStatus.skipped and fake_rasa.calls == []


async def test_long_messenger_text_bot_reads_its_start(messenger_harness, fake_rasa):
    text = "hello " + "x" * 4500
    await post_signed(messenger_harness.client, payload({"messaging": [
        event(mid="m-long-2", text=text)]}))
    await wait_for(lambda: fake_rasa.calls, 5)
    await messenger_harness.settle()
    assert fake_rasa.calls[0]["message"] == text[:4000]
    n = run_db(messenger_harness.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.text.like("Sorry, I can only%"))))
    assert n == 0  # not "I can only read text messages"


def test_migration_0008_moves_fans_ids_and_keeps_ours(database_url):
    """An existing database: fans' ids move to fan_message_id, our sends' mids stay."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from api.migrations.config import alembic_config

    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0006")
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO fans (id, created_at) VALUES (1, CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO channel_identities (id, fan_id, channel, external_id, "
                              "created_at) VALUES (1, 1, 'rest', 'ana', CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO conversations (id, fan_id, identity_id, channel, "
                              "status, reasons, version, created_at, updated_at) VALUES "
                              "(1, 1, 1, 'rest', 'bot', '[]', 1, CURRENT_TIMESTAMP, "
                              "CURRENT_TIMESTAMP)"))
            for uid, kind, sender, mid in (("a" * 32, "incoming", "fan", "1"),
                                           ("b" * 32, "outgoing", "bot", "m_ours")):
                conn.execute(text(
                    "INSERT INTO messages (uid, conversation_id, channel, kind, sender_type, "
                    "channel_message_id, relay_attempts, created_at) VALUES "
                    f"('{uid}', 1, 'rest', '{kind}', '{sender}', '{mid}', 0, CURRENT_TIMESTAMP)"))
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT kind, channel_message_id, fan_message_id "
                                     "FROM messages ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("incoming", None, "1"), ("outgoing", "m_ours", None)]
    finally:
        engine.dispose()
