"""Honest waiting: how long the fan has waited since their first message no person answered,
overdue marks against the topic's target, the queue sorted by it, and a due time the timers never
push forward (fake clock; SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from api.conversations import waiting
from api.conversations.models import Conversation, Message
from api.enums import MessageKind, SenderType
from api.routing import service as routing
from tests.api.conftest import go_online, login, run_db

REST = "/webhooks/rest/webhook"
LOST = "I can't find my friend and she isn't answering"


async def say(h, sender: str, text: str) -> list[dict]:
    r = await h.client.post(REST, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


def conversation_of(h, sender: str) -> Conversation:
    def get(s):
        from api.conversations.models import ChannelIdentity

        identity = s.scalar(select(ChannelIdentity).where(ChannelIdentity.external_id == sender))
        return s.scalar(select(Conversation).where(Conversation.identity_id == identity.id)
                        .order_by(Conversation.id.desc()))
    return run_db(h.services, get)


def fan_messages(h, cid: int) -> list[Message]:
    return run_db(h.services, lambda s: list(s.scalars(select(Message).where(
        Message.conversation_id == cid, Message.kind == MessageKind.incoming,
        Message.sender_type == SenderType.fan).order_by(Message.id))))


async def inbox(h, headers) -> dict:
    r = await h.client.get("/api/v1/inbox", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def test_a_night_with_nobody_online_waits_grow_and_the_due_time_stays(harness, clock):
    h = harness
    [item] = await say(h, "fan-night", LOST)
    assert item["custom"]["handoff"]["status"] == "queued"
    c = conversation_of(h, "fan-night")
    [first] = fan_messages(h, c.id)
    due = c.first_response_due_at
    assert due == first.created_at + dt.timedelta(minutes=2)  # lost_person: 2 minutes
    laura = await login(h.client, "laura")  # a supervisor, offline all night
    alerts = 0
    for hour in range(8):
        for _ in range(12):  # the timers every 5 minutes
            clock.advance(minutes=5)
            alerts += len((await h.services.handoff.check_timers()).alerts)
        if hour == 3:
            await say(h, "fan-night", "hello?? anyone")  # held for a person: still waiting
        row = (await inbox(h, laura))["all"][0]
        assert parse(row["waiting_since"]) == first.created_at
        assert row["waiting_s"] == int((clock.now() - first.created_at).total_seconds())
        assert row["overdue_by_s"] == row["waiting_s"] - 120
        assert conversation_of(h, "fan-night").first_response_due_at == due
    assert row["waiting_s"] >= 8 * 3600 - 5
    assert alerts == 96  # supervisors reminded each round (the target is shorter than it)
    # Someone comes online, takes it, goes offline again: back in the queue, due time unmoved.
    karim = await login(h.client, "karim")
    assert (await go_online(h.client, karim))["conversations_moved"] == [c.id]
    await go_online(h.client, karim, "offline")
    c = conversation_of(h, "fan-night")
    assert c.status.value == "queued" and c.first_response_due_at == due
    [row] = (await inbox(h, laura))["urgent_unassigned"]
    assert row["id"] == c.id and row["overdue_by_s"] > 8 * 3600 - 200


async def test_reminders_once_per_target_without_moving_the_due_time(harness, clock):
    await say(harness, "fan-r", LOST)
    c = conversation_of(harness, "fan-r")
    due = c.first_response_due_at
    clock.advance(minutes=2, seconds=1)
    assert len((await harness.services.handoff.check_timers()).alerts) == 1
    clock.advance(minutes=1)  # within 2 minutes of the last reminder: quiet
    assert (await harness.services.handoff.check_timers()).alerts == []
    clock.advance(minutes=1)
    assert len((await harness.services.handoff.check_timers()).alerts) == 1
    assert conversation_of(harness, "fan-r").first_response_due_at == due


async def test_queue_urgent_first_then_longest_wait_with_overdue_marks(harness, clock):
    h = harness
    await say(h, "fan-normal", "human please")  # the bot asks for a person: general, 30 min
    await say(h, "fan-urgent-1", LOST)
    await say(h, "fan-urgent-2", LOST)
    await say(h, "fan-urgent-1", "hello?? anyone")  # writing again keeps their place
    ids = {s: conversation_of(h, s).id for s in ("fan-normal", "fan-urgent-1", "fan-urgent-2")}
    laura = await login(h.client, "laura")
    clock.advance(minutes=5)
    lists = await inbox(h, laura)
    rows = lists["all"]
    assert [r["id"] for r in rows] == [ids["fan-urgent-1"], ids["fan-urgent-2"],
                                      ids["fan-normal"]]
    by_id = {r["id"]: r for r in rows}
    urgent = by_id[ids["fan-urgent-1"]]
    assert urgent["overdue_by_s"] == urgent["waiting_s"] - 120 > 0
    assert by_id[ids["fan-normal"]]["overdue_by_s"] == 0  # 5 of 30 minutes
    assert [r["id"] for r in lists["urgent_unassigned"]] == [ids["fan-urgent-1"],
                                                             ids["fan-urgent-2"]]
    # The same order for routing: the longest-waiting urgent fan goes first.
    queued = run_db(h.services, lambda s: [c.id for c in routing.queued_conversations(session=s)])
    assert queued == [ids["fan-urgent-1"], ids["fan-urgent-2"], ids["fan-normal"]]
    # Laura takes the first: it leaves the banner's list, the other stays.
    r = await h.client.post(f"/api/v1/conversations/{ids['fan-urgent-1']}/take", headers=laura)
    assert r.status_code == 200, r.text
    assert [r["id"] for r in (await inbox(h, laura))["urgent_unassigned"]] == [
        ids["fan-urgent-2"]]


async def test_a_person_answers_then_the_fans_next_message_starts_a_new_wait(harness, clock):
    h = harness
    noor = await login(h.client, "noor")
    await go_online(h.client, noor)
    await say(h, "fan-a", LOST)
    c = conversation_of(h, "fan-a")
    ctx = (await h.client.get(f"/api/v1/conversations/{c.id}/context", headers=noor)).json()
    assert ctx["waiting_since"] is not None and ctx["overdue_by_s"] == 0
    r = await h.client.post(f"/api/v1/conversations/{c.id}/messages",
                            json={"text": "Noor here, where are you?"}, headers=noor)
    assert r.status_code == 201
    ctx = (await h.client.get(f"/api/v1/conversations/{c.id}/context", headers=noor)).json()
    assert ctx["waiting_since"] is None and ctx["overdue_by_s"] is None  # answered
    clock.advance(minutes=3)
    await say(h, "fan-a", "by the main stage")
    later = fan_messages(h, c.id)[-1]
    ctx = (await h.client.get(f"/api/v1/conversations/{c.id}/context", headers=noor)).json()
    assert parse(ctx["waiting_since"]) == later.created_at


async def test_bot_answers_before_the_handoff_do_not_count(harness, clock):
    h = harness
    await say(h, "fan-b", "what time do doors open?")  # the bot answers: not waiting
    await say(h, "fan-b", "human please")  # the bot hands off on this one
    c = conversation_of(h, "fan-b")
    first, handed = fan_messages(h, c.id)
    since = run_db(h.services, waiting.waiting_since, conversation_id=c.id)
    assert since == handed.created_at != first.created_at
    started = run_db(h.services, lambda s: s.scalar(
        select(waiting.handoff_started_at()).where(Conversation.id == c.id)))
    assert waiting.aware(started) == handed.created_at
