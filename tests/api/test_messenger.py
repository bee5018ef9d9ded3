"""Messenger webhook: handshake, signature, every entry and event, echoes, de-dup, Send API."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from sqlalchemy import func, select

from api.channels.messenger.send_api import SendApiClient, SendError, message_bodies, split_text
from api.channels.messenger.signature import sign, verify
from api.conversations.models import Message
from api.enums import DeliveryStatus, MessageKind, OutboxStatus, RelayStatus
from api.outbox.models import OutboxItem
from tests.api.conftest import APP_SECRET, PAGE_TOKEN, VERIFY_TOKEN, run_db, wait_for

URL = "/webhooks/messenger"


def event(psid="psid-1", mid="mid-1", text="hello", **message):
    return {"sender": {"id": psid}, "recipient": {"id": "page-1"}, "timestamp": 1700000000000,
            "message": {"mid": mid, "text": text, **message}}


def payload(*entries):
    return {"object": "page", "entry": [
        {"id": "page-1", "time": 1700000000000, **e} for e in entries]}


async def post_signed(client, body, secret=APP_SECRET):
    raw = json.dumps(body, ensure_ascii=True).encode()
    return await client.post(URL, content=raw, headers={
        "content-type": "application/json", "x-hub-signature-256": sign(secret, raw)})


# -- signature -------------------------------------------------------------------------------
def test_signature_over_raw_bytes():
    raw = b'{"text":"caf\\u00e9"}'
    header = sign("s3cret", raw)
    assert verify("s3cret", raw, header)
    assert not verify("s3cret", '{"text":"café"}'.encode(), header)  # re-serialised: differs
    assert not verify("other", raw, header)
    assert not verify("s3cret", raw, None)
    assert not verify("s3cret", raw, "sha1=" + header[7:])
    assert not verify("s3cret", raw, header[:-1] + ("0" if header[-1] != "0" else "1"))


async def test_wrong_or_missing_signature_is_403(messenger_harness, fake_rasa):
    raw = json.dumps(payload({"messaging": [event()]})).encode()
    r = await messenger_harness.client.post(URL, content=raw)
    assert r.status_code == 403
    r = await messenger_harness.client.post(URL, content=raw,
                                            headers={"x-hub-signature-256": sign("nope", raw)})
    assert r.status_code == 403
    n = run_db(messenger_harness.services,
               lambda s: s.scalar(select(func.count()).select_from(Message)))
    assert n == 0 and fake_rasa.calls == []


async def test_verification_handshake(messenger_harness):
    c = messenger_harness.client
    ok = await c.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                  "hub.challenge": "12345"})
    assert ok.status_code == 200 and ok.text == "12345"
    bad = await c.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": "x",
                                   "hub.challenge": "12345"})
    assert bad.status_code == 403


async def test_messenger_off_without_settings(harness):
    r = await harness.client.get(URL, params={"hub.mode": "subscribe"})
    assert r.status_code == 404
    assert "not configured" in r.json()["detail"]


async def test_malformed_and_invalid_utf8_bodies(messenger_harness):
    c = messenger_harness.client
    for raw in (b'{"object": "page", "entry": [', b'{"object": "page\xff"}'):
        r = await c.post(URL, content=raw, headers={"x-hub-signature-256": sign(APP_SECRET, raw)})
        assert r.status_code == 400
    r = await post_signed(c, {"object": "instagram", "entry": []})
    assert r.status_code == 404


# -- events ----------------------------------------------------------------------------------
async def test_message_answered_through_send_api(messenger_harness, fake_rasa, fake_graph):
    r = await post_signed(messenger_harness.client, payload({"messaging": [event()]}))
    assert r.status_code == 200 and r.text == "EVENT_RECEIVED"
    await wait_for(lambda: fake_graph.messages(), 5)
    await messenger_harness.settle()
    typing, sent = fake_graph.calls[0], fake_graph.messages()[0]
    assert typing["body"] == {"recipient": {"id": "psid-1"}, "sender_action": "typing_on"}
    # The page token travels in a header, never in the URL (URLs end up in logs).
    assert sent["token"] == PAGE_TOKEN and typing["token"] == PAGE_TOKEN
    assert sent["query"] == {} and typing["query"] == {}
    assert sent["path"] == "/v23.0/me/messages"
    assert sent["body"]["recipient"] == {"id": "psid-1"}
    assert sent["body"]["messaging_type"] == "RESPONSE"
    assert sent["body"]["message"]["text"] == "echo: hello"
    assert sent["body"]["message"]["metadata"].startswith("sb:")
    assert fake_rasa.calls[0]["metadata"]["channel"] == "messenger"

    def check(s):
        out = s.scalars(select(Message).where(Message.kind == MessageKind.outgoing)).one()
        assert out.delivery_status == DeliveryStatus.sent
        assert out.channel_message_id.startswith("m_")
        assert s.scalars(select(OutboxItem)).one().status == OutboxStatus.sent

    run_db(messenger_harness.services, check)


async def test_200_before_the_bot_is_called(messenger_harness, fake_rasa, fake_graph):
    fake_rasa.delay = 1.0
    t0 = time.monotonic()
    r = await post_signed(messenger_harness.client, payload({"messaging": [event()]}))
    assert r.status_code == 200 and time.monotonic() - t0 < 0.8
    stored = run_db(messenger_harness.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))
    assert stored == 1  # stored before the answer
    await wait_for(lambda: fake_graph.messages(), 5)


async def test_every_entry_every_event_and_dedup(messenger_harness, fake_rasa, fake_graph):
    body = payload(
        {"messaging": [event("a", "m-a1", "one"), event("a", "m-a2", "two")]},
        {"messaging": [event("b", "m-b1", "three"),
                       {"sender": {"id": "b"}, "recipient": {"id": "page-1"},
                        "postback": {"mid": "m-b2", "title": "Talk",
                                     "payload": "/request_human"}}]},
    )
    await post_signed(messenger_harness.client, body)
    await post_signed(messenger_harness.client, body)  # Meta retried: duplicates by mid
    await wait_for(lambda: len(fake_graph.messages()) == 4, 5)
    await messenger_harness.settle()
    sent = sorted(c["message"] for c in fake_rasa.calls)
    assert sent == sorted(["one", "two", "three", "/request_human"])
    a = [c["message"] for c in fake_rasa.calls if c["sender"] == "messenger-a"]
    assert a == ["one", "two"]


async def test_standby_delivery_read_recorded_without_replies(messenger_harness, fake_rasa,
                                                              fake_graph):
    await post_signed(messenger_harness.client, payload({"messaging": [event()]}))
    await wait_for(lambda: fake_graph.messages(), 5)
    await messenger_harness.settle()
    mid = fake_graph.messages()[0]
    out_mid = run_db(messenger_harness.services, lambda s: s.scalars(
        select(Message.channel_message_id).where(Message.kind == MessageKind.outgoing)).one())
    calls_before = len(fake_graph.calls)
    body = payload(
        {"standby": [event("psid-1", "m-standby", "are you there?")]},
        {"messaging": [{"sender": {"id": "psid-1"}, "recipient": {"id": "page-1"},
                        "delivery": {"mids": [out_mid], "watermark": 1}}]},
    )
    await post_signed(messenger_harness.client, body)
    await asyncio.sleep(0.3)
    await messenger_harness.settle()
    assert len(fake_graph.calls) == calls_before and len(fake_rasa.calls) == 1

    def check(s):
        standby = s.scalars(select(Message).where(Message.fan_message_id == "m-standby")).one()
        assert standby.relay_status == RelayStatus.standby
        out = s.scalars(select(Message).where(Message.channel_message_id == out_mid)).one()
        assert out.delivery_status == DeliveryStatus.delivered

    run_db(messenger_harness.services, check)
    read = payload({"messaging": [{"sender": {"id": "psid-1"}, "recipient": {"id": "page-1"},
                                   "read": {"watermark": int(time.time() * 1000) + 1000}}]})
    await post_signed(messenger_harness.client, read)
    status = run_db(messenger_harness.services, lambda s: s.scalars(
        select(Message.delivery_status).where(Message.channel_message_id == out_mid)).one())
    assert status == DeliveryStatus.read
    assert mid  # the first reply went out


async def test_echoes(messenger_harness, fake_rasa, fake_graph):
    await post_signed(messenger_harness.client, payload({"messaging": [event()]}))
    await wait_for(lambda: fake_graph.messages(), 5)
    await messenger_harness.settle()
    metadata = fake_graph.messages()[0]["body"]["message"]["metadata"]
    page_echo = {"sender": {"id": "page-1"}, "recipient": {"id": "psid-1"},
                 "message": {"is_echo": True, "app_id": 111, "mid": "m-echo-ours",
                             "text": "echo: hello", "metadata": metadata}}
    human_echo = {"sender": {"id": "page-1"}, "recipient": {"id": "psid-1"},
                  "message": {"is_echo": True, "app_id": 263902037430900, "mid": "m-human",
                              "text": "Hi, Laura here"}}
    sub = messenger_harness.services.bus.subscribe()
    await post_signed(messenger_harness.client, payload({"messaging": [page_echo, human_echo]}))
    await messenger_harness.settle()
    assert len(fake_rasa.calls) == 1  # echoes never reach the bot

    def check(s):
        staff = s.scalars(select(Message).where(Message.channel_message_id == "m-human")).one()
        assert staff.sender_type.value == "staff" and staff.kind == MessageKind.outgoing
        assert s.scalar(select(func.count()).select_from(Message)
                        .where(Message.channel_message_id == "m-echo-ours")) == 0

    run_db(messenger_harness.services, check)
    types = [sub.queue.get_nowait().type for _ in range(sub.queue.qsize())]
    assert "conversation.external_takeover" in types


async def test_attachment_only_gets_text_only_notice(messenger_harness, fake_rasa, fake_graph):
    ev = {"sender": {"id": "p9"}, "recipient": {"id": "page-1"},
          "message": {"mid": "m-img", "attachments": [{"type": "image",
                                                      "payload": {"url": "https://x/y.png"}}]}}
    await post_signed(messenger_harness.client, payload({"messaging": [ev]}))
    await wait_for(lambda: fake_graph.messages(), 5)
    assert "only read text" in fake_graph.messages()[0]["body"]["message"]["text"]
    assert fake_rasa.calls == []


# -- Send API client -------------------------------------------------------------------------
def test_split_text_under_2000():
    text = ("Lorem ipsum dolor sit amet. " * 200).strip()
    parts = split_text(text)
    assert len(parts) >= 3 and all(0 < len(p) < 2000 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_text("x" * 4500) == ["x" * 1999, "x" * 1999, "x" * 502]


def test_bodies_quick_replies_on_last_part():
    buttons = [{"title": f"A very long button title {i}", "payload": f"/p{i}"} for i in range(15)]
    bodies = message_bodies(psid="p", text="y " * 1500, buttons=buttons, metadata="sb:1")
    assert len(bodies) == 2
    assert "quick_replies" not in bodies[0]["message"]
    qr = bodies[1]["message"]["quick_replies"]
    assert len(qr) == 13 and all(len(q["title"]) <= 20 for q in qr)
    assert qr[0] == {"content_type": "text", "title": "A very long button t", "payload": "/p0"}
    assert all(b["messaging_type"] == "RESPONSE" and b["message"]["metadata"] == "sb:1"
               for b in bodies)


@pytest.fixture
async def send_client(fake_graph):
    async with httpx.AsyncClient() as http:
        yield SendApiClient(graph_url=fake_graph.url + "/v23.0", page_token="tok", http=http,
                            max_retries=3, backoff_s=0.01)


async def test_send_retries_temporary_errors(send_client, fake_graph):
    fake_graph.fail_next(fake_graph.error(2, status=500), fake_graph.error(613),
                         fake_graph.error(4))
    result = await send_client.post({"recipient": {"id": "p"}, "messaging_type": "RESPONSE",
                                     "message": {"text": "hi"}})
    assert result["message_id"].startswith("m_")
    assert len(fake_graph.calls) == 4
    assert all(c["body"] == fake_graph.calls[0]["body"] for c in fake_graph.calls)


@pytest.mark.parametrize(("code", "subcode", "kind"), [
    (10, 2018278, "outside_window"), (551, None, "unavailable"), (190, None, "bad_token")])
async def test_send_final_errors_not_retried(send_client, fake_graph, code, subcode, kind):
    fake_graph.fail_next(fake_graph.error(code, subcode))
    with pytest.raises(SendError) as info:
        await send_client.post({"recipient": {"id": "p"}, "message": {"text": "hi"}})
    assert info.value.kind == kind and not info.value.retryable
    assert len(fake_graph.calls) == 1


async def test_send_gives_up_after_max_retries(send_client, fake_graph):
    fake_graph.fail_next(*[fake_graph.error(2, status=500)] * 5)
    with pytest.raises(SendError) as info:
        await send_client.post({"recipient": {"id": "p"}, "message": {"text": "hi"}})
    assert info.value.kind == "temporary" and len(fake_graph.calls) == 4


async def test_failed_send_recorded_on_message(messenger_harness, fake_graph):
    fake_graph.fail_next((200, {"recipient_id": "psid-1"}),  # typing_on
                         fake_graph.error(10, 2018278))
    await post_signed(messenger_harness.client, payload({"messaging": [event()]}))
    await wait_for(lambda: len(fake_graph.calls) >= 2, 5)
    await messenger_harness.settle()

    def check(s):
        out = s.scalars(select(Message).where(Message.kind == MessageKind.outgoing)).one()
        assert out.delivery_status == DeliveryStatus.failed
        assert out.delivery_error.startswith("outside_window")
        item = s.scalars(select(OutboxItem)).one()
        assert (item.status, item.error_code, item.error_subcode) == (
            OutboxStatus.failed, 10, 2018278)

    run_db(messenger_harness.services, check)
    assert len(fake_graph.calls) == 2  # not retried
