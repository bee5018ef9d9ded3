"""The database cost of a fan's REST bot turn (docs/benchmarks.md, "the switchboard's own
cost"): two commits — the fan's message stored and its turn claimed before Rasa is called, the
replies stored (and, REST, handed out) after — and a fixed budget of statements, on SQLite and
PostgreSQL (``SWITCHBOARD_TEST_DB``). Counted with SQLAlchemy's engine events against the fake
Rasa, with the background loops slowed down so that only the turn's own work is seen."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import event, select

from api import flows
from api.conversations import service as conversations
from api.conversations.models import Message
from api.enums import Channel, DeliveryStatus, MessageKind, RelayStatus, SenderType
from tests.api.conftest import _harness, run_db

URL = "/webhooks/rest/webhook"
# Statements per REST turn of an open conversation (SELECT/INSERT/UPDATE; commits not
# counted). Receive + claim: the conversation with its identity (locked), survey, insert,
# identity and conversation updates, the language decision (2; SQLite reads the thread's
# language again under its write lock: 3), another message waiting?, the fan's history, the
# claim; store: the message with its conversation, uncollected replies, the message's update,
# the reply's insert, another message waiting?
STATEMENT_BUDGET = 15
QUIET = dict(RELAY_POLL_S=3600, OUTBOX_POLL_S=3600, CLUSTER_HEARTBEAT_S=3600,
             CLUSTER_STALE_S=7200, TIMER_POLL_S=3600)


class Counter:
    def __init__(self, engine) -> None:
        self.statements: list[str] = []
        self.commits = 0
        self.lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:
        with self.lock:
            self.statements.append(" ".join(statement.split())[:120])

    def _commit(self, conn) -> None:
        with self.lock:
            self.commits += 1

    def reset(self) -> None:
        with self.lock:
            self.statements, self.commits = [], 0


@pytest.fixture
async def quiet_app(make_settings, pattern_triage):
    async for h in _harness(make_settings(**QUIET), triage=pattern_triage, timers=False):
        await asyncio.sleep(0.2)  # startup's own statements (first heartbeat, rounds) done
        yield h


async def turn(h, counter: Counter, text: str, sender: str = "ana"):
    counter.reset()
    r = await h.client.post(URL, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    await asyncio.sleep(0.2)  # anything the turn woke in the background is counted too
    return r.json(), counter.commits, list(counter.statements)


async def test_rest_turn_commits_twice_within_budget(quiet_app, fake_rasa):
    counter = Counter(quiet_app.services.db.engine)
    replies, commits, _ = await turn(quiet_app, counter, "hello")  # opens the conversation
    assert replies == [{"recipient_id": "ana", "text": "echo: hello"}]
    assert commits == 2
    for text in ("what time do you open?", "buttons please", "thanks"):
        replies, commits, statements = await turn(quiet_app, counter, text)
        assert replies and replies[0]["text"] in (f"echo: {text}", "Pick one")
        assert commits == 2, statements
        assert len(statements) <= STATEMENT_BUDGET, "\n".join(statements)
        # no outbox round for a pull channel's reply, no second look for the replies
        assert not [s for s in statements if "outbox" in s], statements
    assert len(fake_rasa.calls) == 4

    def check(session):
        incoming = session.scalars(select(Message).where(Message.kind == MessageKind.incoming)
                                   .order_by(Message.id)).all()
        assert {m.relay_status for m in incoming} == {RelayStatus.answered}
        assert {(m.relay_attempts, m.next_relay_at) for m in incoming} == {(1, None)}
        outgoing = session.scalars(select(Message).where(Message.kind == MessageKind.outgoing))
        assert {m.delivery_status for m in outgoing} == {DeliveryStatus.sent}

    run_db(quiet_app.services, check)


async def test_replies_waiting_are_collected_with_the_turn(quiet_app):
    """A reply stored while the fan was away (a holding reply, a person's handback) leads the
    next response, collected in the turn's own commit."""
    await quiet_app.client.post(URL, json={"sender": "ana", "message": "hello"})

    def park_reply(session):
        conv = conversations.current_for_identity(
            session=session, identity_id=conversations.get_identity(
                session=session, channel=Channel.rest, external_id="ana").id)
        conversations.add_reply(session=session, conversation=conv,
                                sender_type=SenderType.system,
                                text="while you were away")
        session.commit()

    run_db(quiet_app.services, park_reply)
    counter = Counter(quiet_app.services.db.engine)
    replies, commits, _ = await turn(quiet_app, counter, "back again")
    assert [r["text"] for r in replies] == ["while you were away", "echo: back again"]
    assert commits == 2
    r = await quiet_app.client.post(URL, json={"sender": "ana", "message": "and again"})
    assert [m["text"] for m in r.json()] == ["echo: and again"]  # nothing handed out twice


def test_a_message_behind_a_waiting_one_is_not_claimed_in_line(make_settings, database_url):
    """Only the oldest message of a thread waiting for the bot is claimed when it is stored;
    the one behind it is the relay's to claim, in order (api/flows.py claim_next_turn)."""
    from api.cluster.service import Member
    from api.db import Database
    from api.events import InProcessEventBus

    db = Database(database_url, InProcessEventBus())
    member = Member("replica-a", 30.0)
    try:
        with db.session() as s:
            first = flows.receive_fan_message(s, channel=Channel.rest, external_id="bea",
                                              text="one", claim_for=member)
        with db.session() as s:
            second = flows.receive_fan_message(s, channel=Channel.rest, external_id="bea",
                                               text="two", claim_for=member)
        assert first.turn is not None and first.turn.claimed and first.turn.attempts == 1
        assert second.relay and second.turn is None
        with db.session() as s:
            rows = {m.id: m for m in s.scalars(select(Message))}
            assert rows[first.message_id].relay_claimed_by == "replica-a"
            assert rows[second.message_id].relay_claimed_by is None
            # the retry loop leaves the claimed turn to its replica for stale_s
            assert flows.due_conversations(s, member=member) == []
    finally:
        db.dispose()


def test_messages_of_one_thread_stored_at_once_claim_one(make_settings, database_url):
    """Two messages of a thread stored at the same moment by two replicas: storing one waits
    for the other's commit (the conversation's row lock on PostgreSQL, the write lock on
    SQLite), so exactly one of them is claimed in line."""
    from api.cluster.service import Member
    from api.db import Database
    from api.events import InProcessEventBus

    db = Database(database_url, InProcessEventBus())
    try:
        with db.session() as s:
            flows.receive_fan_message(s, channel=Channel.rest, external_id="cai", text="hi")
            s.execute(Message.__table__.update().values(relay_status=RelayStatus.answered))
            s.commit()
        start = threading.Barrier(2)
        results = []

        def store(replica: str, text: str) -> None:
            with db.session() as s:
                start.wait()
                results.append(flows.receive_fan_message(
                    s, channel=Channel.rest, external_id="cai", text=text,
                    claim_for=Member(replica, 30.0)))

        threads = [threading.Thread(target=store, args=(f"replica-{i}", f"message {i}"))
                   for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 2
        claimed = [r for r in results if r.turn is not None]
        assert len(claimed) == 1
        # the claimed one is the older of the two: the other waits behind it
        assert claimed[0].message_id == min(r.message_id for r in results)
    finally:
        db.dispose()
