"""NUL characters and lone surrogates in any field are a clear 4xx on every backend (PostgreSQL
refuses NUL in text and JSON columns, neither backend stores a lone surrogate), never a 500;
Messenger events, which are never refused, are stored with the bad characters removed.
Found by the fuzzer (benchmarks/fuzz.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from api.conversations.models import ChannelIdentity, Conversation, Message
from api.enums import MessageKind
from api.text import first_unstorable, unstorable
from tests.api.conftest import login, run_db
from tests.api.test_messenger import event, payload, post_signed

REST = "/webhooks/rest/webhook"
NUL, SURROGATE = "a\x00b", "\ud800 hi"
BAD = (NUL, SURROGATE)


def _raw(body) -> bytes:
    # ensure_ascii: a lone surrogate travels as \ud800, as a client's JSON encoder sends it
    return json.dumps(body, ensure_ascii=True).encode()


def _incoming(services) -> int:
    return run_db(services, lambda s: s.scalar(select(func.count()).select_from(Message).where(
        Message.kind == MessageKind.incoming)))


def test_unstorable_says_why_and_where():
    assert unstorable("fine ünïcode ✓") is None
    assert "NUL" in unstorable(NUL) and "surrogate" in unstorable(SURROGATE)
    found = first_unstorable({"sender": "ana", "metadata": {"tags": ["ok", NUL]}})
    assert found == "metadata.tags[1] contains a NUL character"
    assert "(key)" in first_unstorable({"metadata": {NUL: 1}})


@pytest.mark.parametrize("bad", BAD, ids=["nul", "surrogate"])
async def test_rest_refuses_bad_text_in_any_field(harness, fake_rasa, bad):
    bodies = [
        {"sender": bad, "message": "hello"},
        {"sender": "ana", "message": "hello", "metadata": {"message_id": bad}},
        {"sender": "ana", "message": "hello", "metadata": {"language": bad}},
        {"sender": "ana", "message": "hello", "metadata": {"extra": {"deep": [bad]}}},
        {"sender": "ana", "message": "hello", "metadata": {bad: "key"}},
        {"sender": "ana", "message": "hello", "input_channel": bad},
    ]
    for body in bodies:
        r = await harness.client.post(REST, content=_raw(body),
                                      headers={"content-type": "application/json"})
        assert r.status_code == 422, (body, r.text)
        assert "NUL" in r.json()["detail"] or "surrogate" in r.json()["detail"]
    assert _incoming(harness.services) == 0 and fake_rasa.calls == []


@pytest.mark.parametrize("bad", BAD, ids=["nul", "surrogate"])
async def test_staff_api_refuses_bad_text(harness, bad):
    c = harness.client
    r = await c.post(REST, json={"sender": "ana", "message": "human please"})
    assert r.status_code == 200
    conv_id = run_db(harness.services, lambda s: s.scalar(select(Conversation.id)))
    noor = await login(c, "noor")
    calls = [
        ("POST", "/api/v1/auth/login", {"handle": bad, "password": "x"}),
        ("POST", f"/api/v1/conversations/{conv_id}/notes", {"text": bad}),
        ("POST", f"/api/v1/conversations/{conv_id}/messages", {"text": bad}),
        ("POST", f"/api/v1/conversations/{conv_id}/transfer", {"handle": bad}),
        ("POST", f"/api/v1/conversations/{conv_id}/transfer", {"handle": "karim", "note": bad}),
        ("POST", "/api/v1/canned", {"shortcut": "hi", "text": bad}),
    ]
    for method, url, body in calls:
        r = await c.request(method, url, content=_raw(body), headers={
            **noor, "content-type": "application/json"})
        assert r.status_code == 422, (url, body, r.text)
        assert r.json()["detail"]


async def test_query_parameters_refuse_nul(harness):
    # (a query string cannot carry a lone surrogate: percent-decoding replaces invalid UTF-8)
    noor = await login(harness.client, "noor")
    sam = await login(harness.client, "sam")
    for url, name, who in (("/api/v1/conversations", "assignee", noor),
                           ("/api/v1/conversations", "topic", noor),
                           ("/api/v1/review/items", "q", sam),
                           ("/api/v1/review/items", "intent", sam)):
        r = await harness.client.get(url, params={name: NUL}, headers=who)
        assert r.status_code == 422, (url, name, r.text)


async def test_inbox_sign_in_form_refuses_nul_handle(harness):
    r = await harness.client.post("/inbox/login", data={"handle": NUL, "password": "x"})
    assert r.status_code == 422


@pytest.mark.parametrize("bad", BAD, ids=["nul", "surrogate"])
async def test_operator_api_refuses_bad_text(harness, bad):
    # refused before anything reads the project or the queue
    c = harness.client
    sam = await login(c, "sam")
    for body in ({"ids": [1], "action": "annotate", "intent": bad},
                 {"ids": [1], "action": "ignore", "intent": bad}):
        r = await c.post("/api/v1/review/items/bulk", content=_raw(body),
                         headers={**sam, "content-type": "application/json"})
        assert r.status_code == 422, (body, r.text)
    r = await c.post("/api/v1/review/items/1/annotate", content=_raw({"intent": "greet",
                                                                       "text": bad}),
                     headers={**sam, "content-type": "application/json"})
    assert r.status_code == 422, r.text


async def test_messenger_events_with_bad_text_are_stored_cleaned(messenger_harness):
    c = messenger_harness.client
    body = payload(
        {"messaging": [event(psid="psid\x00-1", mid="mid-\x00", text="hi\x00 there \ud800")]},
        {"messaging": [{"sender": {"id": "psid-2"}, "recipient": {"id": "page-1"},
                        "timestamp": 1700000000001,
                        "postback": {"mid": "pb-\x00", "title": "Tick\x00ets",
                                     "payload": "/ask_tickets\x00"}}]},
        {"messaging": [event(psid="psid-3", mid="mid-3", text=None, attachments=[
            {"type": "ima\x00ge", "payload": {"url": "https://example.org/\x00.png"}}])]},
    )
    r = await post_signed(c, body)
    assert r.status_code == 200, r.text
    await messenger_harness.settle()

    def stored(session):
        fans = sorted(session.scalars(select(ChannelIdentity.external_id)).all())
        texts = session.scalars(select(Message.text).where(
            Message.kind == MessageKind.incoming).order_by(Message.id)).all()
        return fans, texts

    fans, texts = run_db(messenger_harness.services, stored)
    assert fans == ["psid-1", "psid-2", "psid-3"]
    assert texts[0] == "hi there ?" and texts[1] == "/ask_tickets"
    assert all(t is None or "\x00" not in t for t in texts)


@pytest.mark.parametrize("bad", BAD, ids=["nul", "surrogate"])
async def test_webchat_refuses_bad_text_in_ids_and_custom_data(live_server, fake_rasa, bad):
    from tests.api.test_webchat import Widget

    widget = Widget(live_server.url)
    await widget.connect()
    try:
        sid = await widget.session(None)
        for extra in ({"message_id": bad}, {"customData": {"message_id": bad}},
                      {"customData": {"language": "en", "note": [bad]}}):
            await widget.say("hello", sid, **extra)
            reply = await widget.next()
            assert reply["metadata"]["error"] == "bad_message", extra
        await widget.say("hello", sid)  # the session still works
        assert (await widget.next())["text"] == "echo: hello"
    finally:
        await widget.close()
    assert _incoming(live_server.app.state.services) == 1


async def test_ids_beyond_the_database_range_are_422(harness):
    # Found by the fuzzer: an id over PostgreSQL's INTEGER (or SQLite's 64 bits) was a 500.
    noor = await login(harness.client, "noor")
    sam = await login(harness.client, "sam")
    huge = 72737182644551909376
    calls = [
        (noor, "GET", f"/api/v1/conversations/{huge}", None),
        (noor, "GET", f"/api/v1/conversations/{2**31}/context", None),
        (noor, "POST", f"/api/v1/conversations/1/messages/{huge}/flag", {"reason": "x"}),
        (noor, "PUT", f"/api/v1/canned/{huge}", {"shortcut": "hi", "text": "hello"}),
        (noor, "DELETE", f"/api/v1/canned/{2**31}", None),
        (noor, "GET", f"/api/v1/canned?conversation_id={huge}", None),
        (sam, "GET", f"/api/v1/review/items/{huge}", None),
        (sam, "GET", f"/api/v1/review/items?offset={huge}", None),
        (sam, "POST", "/api/v1/review/items/bulk", {"ids": [huge], "action": "ignore"}),
        (sam, "GET", f"/api/v1/training/jobs/{huge}", None),
        (sam, "GET", f"/api/v1/training/models/{huge}/evaluation", None),
        (sam, "POST", f"/api/v1/models/{huge}/activate", None),
        (sam, "POST", "/api/v1/models/rollback", {"to_model_id": huge}),
    ]
    for who, method, url, body in calls:
        r = await harness.client.request(method, url, json=body, headers=who)
        assert r.status_code == 422, (method, url, r.text)
    r = await harness.client.get(f"/api/v1/conversations/{2**31 - 1}", headers=noor)
    assert r.status_code == 404  # the largest id is still an ordinary "not found"
