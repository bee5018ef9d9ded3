"""The Rasa-compatible REST channel, idempotency, custom items and bad input."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from api.conversations.models import Conversation, Message
from api.enums import MessageKind, RelayStatus
from api.lost_property.models import LostPropertyReport
from tests.api.conftest import run_db

URL = "/webhooks/rest/webhook"


async def test_reply_list_like_rasa(harness, fake_rasa):
    r = await harness.client.post(URL, json={"sender": "ana", "message": "hello"})
    assert r.status_code == 200
    assert r.json() == [{"recipient_id": "ana", "text": "echo: hello"}]
    call = fake_rasa.calls[-1]
    assert call["path"] == "/webhooks/switchboard/webhook"
    assert call["sender"] == "rest-ana"
    assert call["metadata"]["channel"] == "rest"
    assert call["metadata"]["language"] == "en"
    assert len(call["metadata"]["message_id"]) == 32


async def test_message_stored_with_parse_result(harness):
    await harness.client.post(URL, json={"sender": "ana", "message": "hello"})

    def check(session):
        query = select(Message).where(Message.kind == MessageKind.incoming)
        incoming = session.scalars(query).all()
        assert len(incoming) == 1
        assert incoming[0].relay_status == RelayStatus.answered
        assert incoming[0].intent == "echo" and incoming[0].intent_confidence == 0.91
        out = session.scalars(select(Message).where(Message.kind == MessageKind.outgoing)).all()
        assert [m.text for m in out] == ["echo: hello"]
        assert out[0].reply_to_id == incoming[0].id

    run_db(harness.services, check)


async def test_buttons_pass_through(harness):
    r = await harness.client.post(URL, json={"sender": "ana", "message": "buttons please"})
    assert r.json() == [{"recipient_id": "ana", "text": "Pick one", "buttons": [
        {"title": "Tickets", "payload": "/ask_tickets"},
        {"title": "Talk to a person", "payload": "/request_human"}]}]


async def test_custom_items_are_acted_on_never_shown(harness):
    sub = harness.services.bus.subscribe()
    r = await harness.client.post(URL, json={"sender": "ana", "message": "human please"})
    # the bot's words, then the handoff (the custom handoff_request item itself is never shown)
    first, handoff = r.json()
    assert first == {"recipient_id": "ana", "text": "Let me find someone for you."}
    assert handoff["custom"]["handoff"]["status"] == "queued"  # nobody is online
    assert "handoff_request" not in repr(r.json())
    r = await harness.client.post(URL, json={"sender": "bea", "message": "lost my wallet"})
    assert r.json() == [{"recipient_id": "bea", "text": "I've logged your report."}]

    def check(session):
        conv = session.scalars(select(Conversation).order_by(Conversation.id)).first()
        assert conv.handoff_request["topic"] == "general"
        assert conv.handoff_request["reason"] == "fan asked"
        report = session.scalars(select(LostPropertyReport)).one()
        assert (report.item, report.lost_when, report.contact) == (
            "black wallet", "saturday night", "fan@example.org")
        assert report.conversation_id != conv.id  # bea's

    run_db(harness.services, check)
    types = []
    while not sub.queue.empty():
        types.append(sub.queue.get_nowait().type)
    assert "conversation.handoff_requested" in types
    assert "lost_property.reported" in types


async def test_same_message_id_gives_one_bot_turn(harness, fake_rasa):
    body = {"sender": "ana", "message": "hello", "metadata": {"message_id": "client-1"}}
    first = await harness.client.post(URL, json=body)
    second = await harness.client.post(URL, json=body)
    assert first.json() == [{"recipient_id": "ana", "text": "echo: hello"}]
    # a resend answers with the message's replies again (tests/api/test_rest_retry.py)
    assert second.status_code == 200 and second.json() == first.json()
    assert len(fake_rasa.calls) == 1
    count = run_db(harness.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))
    assert count == 1


async def test_unknown_fields_are_ignored(harness):
    r = await harness.client.post(URL, json={"sender": "ana", "message": "hi", "x_new": 1,
                                              "metadata": {"foo": "bar"}})
    assert r.status_code == 200 and r.json()[0]["text"] == "echo: hi"


def _count_messages(harness) -> int:
    return run_db(harness.services, lambda s: s.scalar(select(func.count()).select_from(Message)))


async def test_malformed_json(harness, fake_rasa):
    r = await harness.client.post(URL, content=b'{"sender": "ana", "message": ',
                                  headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["detail"]
    assert _count_messages(harness) == 0 and fake_rasa.calls == []


async def test_invalid_utf8(harness, fake_rasa):
    raw = b'{"sender": "ana", "message": "caf\xe9"}'
    r = await harness.client.post(URL, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
    assert _count_messages(harness) == 0 and fake_rasa.calls == []


async def test_lone_surrogate_and_nul(harness, fake_rasa):
    for text in ('"\\ud800 hi"', '"a\\u0000b"'):
        raw = ('{"sender": "ana", "message": ' + text + "}").encode()
        r = await harness.client.post(URL, content=raw)
        assert r.status_code == 422, r.text
    assert _count_messages(harness) == 0 and fake_rasa.calls == []


async def test_empty_and_oversized_messages(harness, fake_rasa):
    for message in ("", "   ", "x" * 5000):
        r = await harness.client.post(URL, json={"sender": "ana", "message": message})
        assert r.status_code == 422
        assert "empty" in r.json()["detail"] or "longer than" in r.json()["detail"]
    assert _count_messages(harness) == 0 and fake_rasa.calls == []


async def test_bad_shapes(harness):
    for body in ([1, 2], {"message": "hi"}, {"sender": 5, "message": "hi"},
                 {"sender": "ana", "message": 7}, {"sender": "a" * 500, "message": "hi"}):
        r = await harness.client.post(URL, content=json.dumps(body))
        assert r.status_code in (400, 422), body
    assert _count_messages(harness) == 0


async def test_body_size_limit(harness):
    big = json.dumps({"sender": "ana", "message": "x" * 300_000})
    r = await harness.client.post(URL, content=big)
    assert r.status_code == 413
    assert _count_messages(harness) == 0
