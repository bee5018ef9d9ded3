"""Atomic assignment on PostgreSQL: threads racing for one conversation, exactly one wins.

Every thread reads the conversation (its ``version``), waits at a barrier, then moves it; the
conditional update lets one through and the others get ``TransitionConflict``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select

from api.conversations import service as conversations
from api.conversations.models import Conversation, Message
from api.conversations.service import TransitionConflict
from api.db import Database
from api.enums import Channel, ConversationStatus, MessageKind, Presence, Priority
from api.events import InProcessEventBus
from api.handoff import flows as handoff_flows
from api.handoff import service as handoff
from api.main import migrate, seed_staff
from api.routing import service as routing
from api.settings import REPO_ROOT, Settings
from api.staff.models import Staff

pytestmark = pytest.mark.postgres
RACERS = 6
ROUNDS = 5


@pytest.fixture
def pg_db(pg):
    url = pg.create("sb_atomic")
    migrate(url)
    db = Database(url, InProcessEventBus())
    seed_staff(db, Settings(_env_file=None, APP_ENV="local", DATABASE_URL=url,
                            STAFF_FILE=str(REPO_ROOT / "data" / "staff.yml")))
    with db.session() as s:
        for staff in s.scalars(select(Staff)):
            staff.presence = Presence.online
        s.commit()
    yield db
    db.dispose()


def _conversation(db: Database, external_id: str, status=ConversationStatus.bot) -> int:
    with db.session() as s:
        conv, _ = conversations.open_for(session=s, channel=Channel.rest,
                                         external_id=external_id)
        conv.topic, conv.priority = "safety", Priority.urgent
        if status == ConversationStatus.queued:
            conversations.transition(session=s, conversation=conv, to=status, actor="test",
                                     reason="setup")
        s.commit()
        return conv.id


def _race(n: int, work) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            results[i] = work(i, barrier)
        except Exception as exc:  # the outcome we look at
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _assigned_activities(db: Database, cid: int) -> int:
    with db.session() as s:
        rows = s.scalars(select(Message).where(Message.conversation_id == cid,
                                               Message.kind == MessageKind.activity))
        return sum(1 for m in rows if (m.payload or {}).get("transition", {}).get("to")
                   == "assigned")


def test_routers_racing_to_assign_one_conversation(pg_db):
    with pg_db.session() as s:
        staff_ids = list(s.scalars(select(Staff.id).order_by(Staff.id)))[:RACERS]
    for round_ in range(ROUNDS):
        cid = _conversation(pg_db, f"race-{round_}")

        def work(i, barrier, cid=cid):
            with pg_db.session() as s:
                conv = s.get(Conversation, cid)
                staff = s.get(Staff, staff_ids[i])
                barrier.wait()
                routing.assign(session=s, conversation=conv, staff=staff,
                               now=dt.datetime.now(dt.UTC), minutes=2, actor=f"router-{i}",
                               reason="race")
                time.sleep(0.05)  # hold the row while the others try
                s.commit()
                return staff.id

        results = _race(RACERS, work)
        winners = [r for r in results if isinstance(r, int)]
        assert len(winners) == 1, results
        assert all(isinstance(r, TransitionConflict) for r in results if r not in winners)
        with pg_db.session() as s:
            conv = s.get(Conversation, cid)
            assert conv.status == ConversationStatus.assigned
            assert conv.assignee_id == winners[0] and conv.version == 2
        assert _assigned_activities(pg_db, cid) == 1


def test_full_routing_racing_on_one_thread(pg_db):
    """Two routers run the whole policy + write for the same thread: one handoff, one text."""
    from api.routing.service import load_topics

    topics = load_topics(path=REPO_ROOT / "data" / "staff.yml")
    cid = _conversation(pg_db, "race-route")

    def work(i, barrier):
        with pg_db.session() as s:
            conv = s.get(Conversation, cid)
            barrier.wait()
            desk = handoff.Desk(topics, "Europe/Madrid", dt.datetime.now(dt.UTC))
            routed = handoff.route(session=s, conversation=conv, desk=desk,
                                   actor=f"router-{i}", reason="race")
            s.commit()
            return routed.assignee_id

    results = _race(4, work)
    assert sum(isinstance(r, int) for r in results) == 1, results
    with pg_db.session() as s:
        n_texts = s.scalar(select(func.count()).select_from(Message).where(
            Message.conversation_id == cid, Message.kind == MessageKind.outgoing))
    assert n_texts == 1  # the fan is told once


def test_two_staff_taking_one_queued_thread(pg_db):
    """Two supervisors answer the same queued thread at once: one takes it, one is refused."""
    from api.routing.service import load_topics

    topics = load_topics(path=REPO_ROOT / "data" / "staff.yml")
    cid = _conversation(pg_db, "race-take", ConversationStatus.queued)
    with pg_db.session() as s:
        supervisors = list(s.scalars(select(Staff.id).where(Staff.role == "supervisor")))
    assert len(supervisors) == 2

    def work(i, barrier):
        desk = handoff.Desk(topics, "Europe/Madrid", dt.datetime.now(dt.UTC))
        with pg_db.session() as s:
            s.get(Conversation, cid)  # both have read it queued before either writes
            barrier.wait()
            return handoff_flows.staff_reply(s, conversation_id=cid, staff_id=supervisors[i],
                                             text=f"hi from {i}", desk=desk).message.id

    results = _race(2, work)
    assert sum(isinstance(r, int) for r in results) == 1, results
    with pg_db.session() as s:
        conv = s.get(Conversation, cid)
        assert conv.status == ConversationStatus.assigned and conv.assignee_id in supervisors
    assert _assigned_activities(pg_db, cid) == 1
