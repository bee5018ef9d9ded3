"""The transactional outbox and its delivery worker (api/outbox), on SQLite and PostgreSQL:
a reply and its delivery row commit together, a worker started later delivers what a crash
left, temporary failures are retried with back-off and end dead (visible and counted), and two
workers on one database never send a row twice nor out of order."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from sqlalchemy import select

from api.conversations import service as conversations
from api.conversations.models import Message
from api.db import Database
from api.enums import Channel, DeliveryStatus, OutboxStatus, SenderType
from api.events import InProcessEventBus
from api.outbox import service as outbox
from api.outbox.flows import Delivery
from api.outbox.models import OutboxItem
from api.outbox.worker import OutboxWorker, Sent
from tests.api.conftest import _harness, login, wait_for
from tests.api.test_metrics import by, samples


def store_replies(db: Database, channel: Channel, recipient: str, texts: list[str]) -> int:
    """Replies stored by a process that then died before delivering them: the conversation."""
    with db.session() as session:
        conversation, _ = conversations.open_for(session=session, channel=channel,
                                                 external_id=recipient)
        for text in texts:
            conversations.add_reply(session=session, conversation=conversation,
                                    sender_type=SenderType.bot, text=text)
        session.commit()
        return conversation.id


@pytest.fixture
def db(database_url):
    database = Database(database_url, InProcessEventBus())
    yield database
    database.dispose()


def rows(db: Database) -> list[OutboxItem]:
    with db.session() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def test_reply_and_its_delivery_row_commit_together(db):
    with db.session() as session:
        conversation, _ = conversations.open_for(session=session, channel=Channel.messenger,
                                                 external_id="psid-rollback")
        conversations.add_reply(session=session, conversation=conversation,
                                sender_type=SenderType.bot, text="lost with its row")
        session.rollback()
    assert rows(db) == []
    cid = store_replies(db, Channel.messenger, "psid-commit", ["kept with its row"])
    store_replies(db, Channel.rest, "rest-sender", ["pulled by the client"])
    (item,) = rows(db)  # REST is a pull channel: no row
    with db.session() as session:
        msg = session.get(Message, item.message_id)
        assert (msg.conversation_id, msg.text) == (cid, "kept with its row")
    assert (item.conversation_id, item.recipient, item.status) == (
        cid, "psid-commit", OutboxStatus.pending)


async def test_worker_of_a_new_process_delivers_what_a_crash_left(
        db, messenger_settings, triage_engine, clock, fake_graph):
    # Stored and committed, then the process died before any delivery.
    store_replies(db, Channel.messenger, "psid-crash", ["first", "second"])
    async for h in _harness(messenger_settings(OUTBOX_POLL_S=0.05), triage=triage_engine,
                            clock=clock, timers=False):
        await wait_for(lambda: len(fake_graph.messages()) == 2, 5)
        await wait_for(lambda: all(r.status == OutboxStatus.sent for r in rows(db)), 5)
        await asyncio.sleep(0.2)  # a few more rounds: nothing is sent again
        assert [c["body"]["message"]["text"] for c in fake_graph.messages()] == [
            "first", "second"]
        with h.services.db.session() as session:
            assert {m.delivery_status for m in session.scalars(select(Message))} == {
                DeliveryStatus.sent}


def test_retry_delay_grows_with_jitter_and_is_capped():
    rng = random.Random(7)
    for attempt, (low, high) in enumerate([(2.5, 5), (5, 10), (10, 20), (20, 40), (30, 60)], 1):
        delays = [outbox.retry_delay(attempt, base_s=5, max_s=60, rng=rng) for _ in range(50)]
        assert all(low <= d <= high for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_temporary_failures_retried_with_backoff_then_dead(
        db, messenger_settings, triage_engine, clock, fake_graph):
    cid = store_replies(db, Channel.messenger, "psid-dead", ["never arrives", "after it"])
    fake_graph.fail_next(*[fake_graph.error(2, status=500)] * 3)
    settings = messenger_settings(OUTBOX_POLL_S=0.02, OUTBOX_RETRY_BASE_S=0.2,
                                  OUTBOX_RETRY_MAX_S=0.4, OUTBOX_MAX_ATTEMPTS=3,
                                  MESSENGER_MAX_RETRIES=0)
    async for h in _harness(settings, triage=triage_engine, clock=clock, timers=False):
        await wait_for(lambda: rows(db)[0].status == OutboxStatus.dead, 5)
        times = [c["at"] for c in fake_graph.messages()]
        # the message behind it waited, in order, and went once the first was given up on
        await wait_for(lambda: rows(db)[1].status == OutboxStatus.sent, 5)
        texts = [c["body"]["message"]["text"] for c in fake_graph.messages()]
        assert texts == ["never arrives"] * 3 + ["after it"]
        first = rows(db)[0]
        assert first.attempts == 3 and first.error_code == 2
        # back-off: retry n waits between half and all of base * 2^(n-1)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps

        laura = await login(h.client, "laura")  # a supervisor reads any thread
        r = await h.client.get(f"/api/v1/conversations/{cid}", headers=laura)
        undelivered = r.json()["messages"][0]
        assert undelivered["delivery_status"] == "failed"
        assert undelivered["delivery_error"].startswith("not delivered after 3 attempts: temporary")
        m = samples((await h.client.get("/metrics")).text)
        assert {dict(k)["status"]: v for k, v in m["deliveries_total"].items()
                if dict(k)["channel"] == "messenger"} == {"retried": 2, "dead": 1, "sent": 1}
        assert by(m["outbox_rows"], "status")["dead"] == 1


class RecordingSender:
    """A channel that takes a while per message and records what it was handed."""

    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.log = log

    async def send(self, delivery: Delivery):
        self.log.append((delivery.conversation_id, delivery.message.text, self.name))
        await asyncio.sleep(random.uniform(0, 0.004))
        return Sent(f"mid-{delivery.outbox_id}")

    def local_recipients(self):
        return None


async def test_two_workers_never_send_a_row_twice_nor_out_of_order(database_url, make_settings):
    settings = make_settings(OUTBOX_BATCH=7)
    dbs = [Database(database_url, InProcessEventBus()) for _ in range(2)]
    expected = {}
    for n in range(8):
        texts = [f"c{n}-{i}" for i in range(6)]
        expected[store_replies(dbs[0], Channel.messenger, f"psid-{n}", texts)] = texts
    sent: list[tuple[int, str, str]] = []
    workers = []
    for i, db in enumerate(dbs):
        worker = OutboxWorker(db=db, settings=settings)
        worker.senders[Channel.messenger] = RecordingSender(f"w{i}", sent)
        workers.append(worker)
    deadline = time.monotonic() + 20
    while len(sent) < 48 and time.monotonic() < deadline:
        # both replicas' rounds at once, and one replica delivering a conversation it was
        # woken for at the same time
        await asyncio.gather(*(w.run_round() for w in workers),
                             workers[1].deliver_conversation(min(expected)))
    assert sorted(t for _, t, _ in sent) == sorted(t for ts in expected.values() for t in ts)
    for cid, texts in expected.items():
        assert [t for c, t, _ in sent if c == cid] == texts
    assert {w for _, _, w in sent} == {"w0", "w1"}  # both took part
    assert {r.status for r in rows(dbs[0])} == {OutboxStatus.sent}
    for db in dbs:
        db.dispose()
