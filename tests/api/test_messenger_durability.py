"""A Messenger delivery whose event the database refuses is answered 503, so Meta sends it
again; the redelivery, once the database takes it, stores each message once and each fan gets
one answer. The refusal is the database's own (a trigger that raises on insert), not a mock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, func, select, text

from api.conversations.models import Message
from api.enums import MessageKind
from tests.api.conftest import _harness, run_db, wait_for
from tests.api.test_messenger import event, payload, post_signed

TRIGGER = "sb_test_refuse_messages"


@pytest.fixture
async def messenger_harness(messenger_settings, pattern_triage, clock):
    """Messenger on, with the pattern-only triage: these tests are about storing, not about
    what a trained model thinks of their messages."""
    async for h in _harness(messenger_settings(), triage=pattern_triage, clock=clock,
                            timers=False):
        yield h


@contextmanager
def database_refuses_messages(database_url: str, when: str) -> Iterator[None]:
    """Until the block ends, the database refuses to insert a message row where ``when`` (an
    SQL condition on ``NEW``) holds: SQLite ``RAISE(ABORT)``, PostgreSQL ``RAISE EXCEPTION``."""
    engine = create_engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(text(f"CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"))
            conn.execute(text(f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON messages FOR EACH ROW "
                              f"WHEN ({when}) EXECUTE FUNCTION {TRIGGER}()"))
        else:
            conn.execute(text(f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON messages WHEN {when} "
                              "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {TRIGGER}"
                              + (" ON messages" if postgres else "")))
            if postgres:
                conn.execute(text(f"DROP FUNCTION IF EXISTS {TRIGGER}()"))
        engine.dispose()


def fan_messages(h) -> list[str]:
    return run_db(h.services, lambda s: s.scalars(
        select(Message.fan_message_id).where(Message.kind == MessageKind.incoming)
        .order_by(Message.id)).all())


def answers(fake_graph) -> list[tuple[str, str]]:
    return sorted((c["body"]["recipient"]["id"], c["body"]["message"]["text"])
                  for c in fake_graph.messages())


async def test_refused_event_is_503_then_redelivery_stores_it_once(
        messenger_harness, database_url, fake_rasa, fake_graph):
    h = messenger_harness
    delivery = payload({"messaging": [event("p1", "m-1", "hello")]})
    with database_refuses_messages(database_url, "NEW.kind = 'incoming'"):
        r = await post_signed(h.client, delivery)
        assert r.status_code == 503
        assert "could not be stored" in r.json()["detail"]
        assert fan_messages(h) == []
    await h.settle()
    assert fake_rasa.calls == [] and fake_graph.messages() == []
    # Meta sends the delivery again (more than once, as it may): stored once, one answer
    for _ in range(2):
        r = await post_signed(h.client, delivery)
        assert r.status_code == 200 and r.text == "EVENT_RECEIVED"
    await wait_for(lambda: fake_graph.messages(), 5)
    await h.settle()
    await asyncio.sleep(0.2)  # room for a second answer, were there one
    assert fan_messages(h) == ["m-1"]
    assert len(fake_rasa.calls) == 1
    assert answers(fake_graph) == [("p1", "echo: hello")]


async def test_stored_events_of_a_failed_delivery_are_answered_and_skipped_later(
        messenger_harness, database_url, fake_rasa, fake_graph):
    """One fan's event is refused: the others of the delivery are stored and answered at once;
    that fan's later event waits for the redelivery, so their order holds."""
    h = messenger_harness
    delivery = payload(
        {"messaging": [event("a", "m-a1", "one"), event("b", "m-b1", "two")]},
        {"messaging": [event("b", "m-b2", "three"), event("a", "m-a2", "four")]},
    )
    with database_refuses_messages(database_url, "NEW.fan_message_id = 'm-b1'"):
        r = await post_signed(h.client, delivery)
        assert r.status_code == 503
        await wait_for(lambda: len(fake_graph.messages()) == 2, 5)
        await h.settle()
        assert fan_messages(h) == ["m-a1", "m-a2"]
    r = await post_signed(h.client, delivery)
    assert r.status_code == 200
    await wait_for(lambda: len(fake_graph.messages()) == 4, 5)
    await h.settle()
    await asyncio.sleep(0.2)
    assert sorted(fan_messages(h)) == ["m-a1", "m-a2", "m-b1", "m-b2"]
    assert [c["message"] for c in fake_rasa.calls if c["sender"] == "messenger-b"] == [
        "two", "three"]
    assert len(fake_rasa.calls) == 4
    assert answers(fake_graph) == [("a", "echo: four"), ("a", "echo: one"),
                                   ("b", "echo: three"), ("b", "echo: two")]
    stored = run_db(h.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))
    assert stored == 4
