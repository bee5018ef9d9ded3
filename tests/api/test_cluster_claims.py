"""Several replicas on one database: each bot turn reaches Rasa once and in order, a dead
replica's turn is taken over (through the tracker check), the timers run on one replica.

Each "replica" is its own :class:`Database` (its own connections) and :class:`Replica`
(heartbeat) on the test database, with a relay talking to one fake Rasa that counts the turns
it ran per ``message_id``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from api import flows
from api.cluster import service as cluster
from api.cluster.replica import Replica
from api.conversations.models import Message
from api.db import Database
from api.enums import Channel, MessageKind, RelayStatus
from api.events import InProcessEventBus
from api.relay.client import RasaClient
from api.relay.relay import Relay
from api.snapshots import Received
from tests.api.conftest import wait_for
from tests.api.fakes import FakeRasa


class CountingRasa(FakeRasa):
    """The fake Rasa, also counting turns of one sender that overlap (out of order)."""

    def __init__(self) -> None:
        super().__init__()
        self.turn_s = 0.0
        self.active: Counter[str] = Counter()
        self.overlaps = 0

    def _run_turn(self, sender, text, message_id):
        with self.lock:
            self.active[sender] += 1
            if self.active[sender] > 1:
                self.overlaps += 1
        try:
            time.sleep(self.turn_s)
            return super()._run_turn(sender, text, message_id)
        finally:
            with self.lock:
                self.active[sender] -= 1

    def runs_per_message(self) -> Counter[str]:
        with self.lock:
            return Counter(e["message_id"] for events in self.trackers.values()
                           for e in events if e["event"] == "user")


@pytest.fixture
def rasa():
    server = CountingRasa().start()
    yield server
    server.stop()


class Node:
    """One replica: its database objects, heartbeat and relay."""

    def __init__(self, settings, rasa_url: str) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, InProcessEventBus())
        self.replica = Replica(db=self.db, settings=settings)
        self.http = httpx.AsyncClient(timeout=settings.rasa_timeout_s)
        client = RasaClient(base_url=rasa_url, token=FakeRasa.TOKEN,
                            channel_path=settings.rasa_channel_path, http=self.http,
                            timeout_s=settings.rasa_timeout_s)
        self.relay = Relay(db=self.db, rasa=client, settings=settings, replica=self.replica)

    async def start(self, *, loop: bool = True) -> Node:
        await self.replica.start()
        if loop:
            await self.relay.start()
        return self

    async def die(self) -> None:
        """What a crash looks like to the others: work stops, the heartbeat goes stale."""
        await self.relay.stop()
        await self.replica.stop(leave=False)

    async def close(self) -> None:
        await self.relay.stop()
        if self.replica._thread is not None:  # noqa: SLF001 - still beating
            await self.replica.stop()
        await self.http.aclose()
        self.db.dispose()


@pytest.fixture
async def nodes(make_settings, rasa):
    made: list[Node] = []

    async def make(name: str, *, loop: bool = True, **overrides) -> Node:
        values = dict(REPLICA_ID=name, RASA_URL=rasa.url, RASA_TIMEOUT_S=5.0,
                      CLUSTER_HEARTBEAT_S=0.2, CLUSTER_STALE_S=1.0)
        values.update(overrides)
        node = Node(make_settings(**values), rasa.url)
        made.append(node)
        return await node.start(loop=loop)

    yield make
    for node in made:
        await node.close()


def store(node: Node, sender: str, text: str) -> Received:
    with node.db.session() as session:
        return flows.receive_fan_message(session, channel=Channel.rest, external_id=sender,
                                         text=text)


def incoming(node: Node) -> list[Message]:
    with node.db.session() as session:
        return list(session.scalars(select(Message).where(Message.kind == MessageKind.incoming)
                                    .order_by(Message.id)))


async def test_two_replicas_send_each_message_to_rasa_once_and_in_order(nodes, rasa):
    rasa.turn_s = 0.03
    a, b = await nodes("replica-a"), await nodes("replica-b")
    fans = [f"fan{n}" for n in range(6)]

    async def fan(index: int, sender: str) -> None:
        for i in range(4):
            node = (a, b)[(index + i) % 2]  # the balancer sends each request anywhere
            received = store(node, sender, f"{sender}-{i}")
            # both replicas go for the conversation at once, as a retry loop would
            await asyncio.gather(a.relay.process(received.conversation.id),
                                 b.relay.process(received.conversation.id))

    await asyncio.gather(*(fan(i, s) for i, s in enumerate(fans)))
    await wait_for(lambda: all(m.relay_status == RelayStatus.answered for m in incoming(a)), 10)
    runs = rasa.runs_per_message()
    stored = incoming(a)
    assert len(stored) == 24
    assert {m.uid: runs[m.uid] for m in stored} == {m.uid: 1 for m in stored}
    assert len(rasa.calls) == 24  # nothing sent twice, not even a turn Rasa refused
    assert rasa.overlaps == 0  # never two turns of one fan at once
    for sender in fans:
        sent = [c["message"] for c in rasa.calls if c["sender"] == f"rest-{sender}"]
        assert sent == [f"{sender}-{i}" for i in range(4)]


async def test_a_later_message_waits_while_a_live_replica_holds_the_earlier_one(nodes, rasa):
    a, b = await nodes("replica-a", loop=False), await nodes("replica-b", loop=False)
    first = store(a, "gus", "one")
    cid = first.conversation.id
    _, head = await a.db.run(flows.claim_next_turn, conversation_id=cid,
                             member=a.replica.member)
    assert head is not None and head.claimed
    store(b, "gus", "two")
    await b.relay.process(cid)
    assert rasa.calls == []  # "two" never overtakes "one", held by a live replica
    assert await b.db.run(flows.due_conversations, member=b.replica.member) == []


async def test_a_dead_replicas_turn_is_taken_over_with_the_tracker_check(make_settings, nodes,
                                                                         rasa):
    """Replica A dies while Rasa runs its turn: B takes the turn over within 5 s (default
    heartbeat timings), finds it in the tracker and stores it; Rasa ran it once."""
    rasa.mode, rasa.slow_s = "slow", 3.0  # the turn runs; its answer never reaches A
    timing = dict(CLUSTER_HEARTBEAT_S=1.0, CLUSTER_STALE_S=3.0)
    a, b = await nodes("replica-a", **timing), await nodes("replica-b", **timing)
    received = store(a, "hal", "lost my wallet")
    turn = asyncio.create_task(a.relay.process(received.conversation.id))
    await wait_for(lambda: rasa.turns_for("rest-hal") == 1, 5)
    turn.cancel()
    await a.die()
    died = time.monotonic()
    rasa.mode = "ok"
    await wait_for(lambda: incoming(b)[0].relay_status == RelayStatus.answered, 6)
    assert time.monotonic() - died < 5
    assert rasa.turns_for("rest-hal") == 1
    assert len(rasa.calls) == 1  # never sent again
    assert b.relay.recovered == 1 and rasa.tracker_calls >= 1
    msg = incoming(b)[0]
    assert msg.relay_claimed_by.startswith("replica-b.") and msg.relay_attempts == 1


async def test_a_replica_restarted_under_its_name_does_not_resend_its_predecessors_turn(
        nodes, rasa):
    """Found by the fault test: `make cluster` restarts a killed replica under the same
    REPLICA_ID within a second or two. The new process is another member: the turn its
    predecessor left with Rasa is taken over only once that member is stale, through the
    tracker check, so Rasa runs it once."""
    rasa.mode, rasa.slow_s = "slow", 2.0
    timing = dict(CLUSTER_HEARTBEAT_S=0.5, CLUSTER_STALE_S=2.0)
    first = await nodes("replica-a", **timing)
    received = store(first, "kim", "lost my keys")
    turn = asyncio.create_task(first.relay.process(received.conversation.id))
    await wait_for(lambda: rasa.turns_for("rest-kim") == 1, 5)
    turn.cancel()
    await first.die()
    again = await nodes("replica-a", **timing)  # same name, as the process manager restarts it
    assert again.replica.member.replica_id != first.replica.member.replica_id
    rasa.mode = "ok"
    await wait_for(lambda: incoming(again)[0].relay_status == RelayStatus.answered, 8)
    assert len(rasa.calls) == 1 and list(rasa.runs_per_message().values()) == [1]
    assert again.relay.recovered == 1 and rasa.tracker_calls >= 1


async def test_a_turn_claimed_by_a_replica_that_died_before_rasa_runs_once(nodes, rasa):
    a, b = await nodes("replica-a", loop=False), await nodes("replica-b")
    received = store(a, "ivy", "hello")
    _, head = await a.db.run(flows.claim_next_turn, conversation_id=received.conversation.id,
                             member=a.replica.member)
    assert head.claimed and head.attempts == 1
    await a.die()  # claimed and counted, never sent
    await wait_for(lambda: incoming(b)[0].relay_status == RelayStatus.answered, 5)
    assert rasa.turns_for("rest-ivy") == 1 and len(rasa.calls) == 1
    assert rasa.tracker_calls == 1  # looked first, then sent
    assert incoming(b)[0].relay_attempts == 2


async def test_a_claim_is_taken_once_when_two_replicas_take_over(nodes):
    a = await nodes("replica-a", loop=False)
    b, c = await nodes("replica-b", loop=False), await nodes("replica-c", loop=False)
    received = store(a, "jo", "hello")
    cid = received.conversation.id
    await a.db.run(flows.claim_next_turn, conversation_id=cid, member=a.replica.member)
    await a.replica.stop(leave=False)
    await asyncio.sleep(1.1)
    results = await asyncio.gather(*(
        n.db.run(flows.claim_next_turn, conversation_id=cid, member=n.replica.member)
        for n in (b, c)))
    winners = [turn for _, turn in results if turn is not None]
    assert len(winners) == 1 and not winners[0].claimed  # a takeover checks the tracker
    # and only one of them may count its attempt
    counted = [await n.db.run(flows.mark_attempt, message_id=received.message_id, attempts=1)
               for n in (b, c)]
    assert counted == [True, False]


async def test_a_fresh_message_is_left_to_the_replica_that_stored_it(nodes):
    a, b = await nodes("replica-a", loop=False), await nodes("replica-b", loop=False)
    received = store(a, "kim", "hello")
    assert await b.db.run(flows.due_conversations, member=b.replica.member) == []
    await asyncio.sleep(1.05)  # nobody claimed it within CLUSTER_STALE_S: its replica died
    assert await b.db.run(flows.due_conversations,
                          member=b.replica.member) == [received.conversation.id]


async def test_a_clean_stop_hands_claims_and_leases_over_at_once(nodes):
    a, b = await nodes("replica-a", loop=False), await nodes("replica-b", loop=False)
    a.replica.want("job")
    await asyncio.to_thread(a.replica.beat)
    b.replica.want("job")
    await asyncio.to_thread(b.replica.beat)
    assert a.replica.holds("job") and not b.replica.holds("job")
    received = store(a, "lu", "hello")
    await a.db.run(flows.claim_next_turn, conversation_id=received.conversation.id,
                   member=a.replica.member)
    await a.replica.stop()
    await asyncio.to_thread(b.replica.beat)
    assert b.replica.holds("job")
    _, head = await b.db.run(flows.claim_next_turn, conversation_id=received.conversation.id,
                             member=b.replica.member)
    assert head is not None


def test_serialised_blocks_the_other_replica_until_commit(database_url):
    """Annotation writes and training jobs are serialised across replicas (PostgreSQL: an
    advisory lock held until commit; SQLite: one process, a thread lock)."""
    import threading

    one = Database(database_url, InProcessEventBus())
    two = Database(database_url, InProcessEventBus())
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait(5)
        with two.session() as session, cluster.serialised(session, "test-lock"):
            order.append("two")
            session.commit()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with one.session() as session, cluster.serialised(session, "test-lock"):
            inside.set()
            time.sleep(0.3)
            order.append("one")
            session.commit()
        thread.join(5)
        assert order == ["one", "two"]
    finally:
        one.dispose()
        two.dispose()


async def test_the_timers_run_on_one_replica_and_move_when_it_dies(nodes, pattern_triage):
    from api.clock import FakeClock
    from api.handoff.manager import HandoffManager

    a = await nodes("replica-a", loop=False, TIMER_POLL_S=0.05)
    b = await nodes("replica-b", loop=False, TIMER_POLL_S=0.05)
    rounds: Counter[str] = Counter()
    managers = {}
    for node in (a, b):
        manager = HandoffManager(db=node.db, settings=node.settings, clock=FakeClock(),
                                 topics={}, http=node.http, relay=node.relay,
                                 triage=pattern_triage, replica=node.replica)
        real_round = manager.check_timers

        async def counted(name=node.replica.id, real_round=real_round):
            rounds[name] += 1
            return await real_round()

        manager.check_timers = counted
        managers[node.replica.id] = manager
        await manager.start()
    try:
        # Many rounds (slow ones on a loaded machine), all of them on one replica.
        await wait_for(lambda: sum(rounds.values()) >= 5, 15)
        assert len(rounds) == 1
        leader = next(iter(rounds))
        by_id = {a.replica.id: a, b.replica.id: b}
        follower = (set(by_id) - {leader}).pop()
        await managers[leader].stop()
        await by_id[leader].die()
        await wait_for(lambda: rounds[follower] > 0, 5)  # stale (1 s) + a heartbeat + slack
        with b.db.session() as session:
            assert cluster.lease_holder(session, name=cluster.TIMERS_LEASE) == follower
    finally:
        for manager in managers.values():
            await manager.stop()


async def test_a_live_replicas_training_job_survives_another_replicas_start(nodes):
    from api.training import service as training
    from api.training.runner import TrainingRunner

    a, b = await nodes("replica-a", loop=False), await nodes("replica-b", loop=False)
    job_id = await a.db.run(training.create_flow, by="sam", member=a.replica.member)

    def status() -> str:
        with b.db.session() as session:
            return training.get(session, job_id)["status"]

    runner = TrainingRunner(b.db, b.settings, b.replica)
    await runner.start()
    try:
        assert status() == "running"
        with pytest.raises(training.Busy):  # one job at a time in the cluster
            await b.db.run(training.create_flow, by="noor", member=b.replica.member)
        await a.replica.stop(leave=False)  # replica A dies with its job
        await wait_for(lambda: status() == "failed", 4)  # stale (1 s) + a sweep (every 1 s)
        assert await b.db.run(training.create_flow, by="noor", member=b.replica.member)
    finally:
        await runner.stop()


@pytest.mark.postgres
def test_serialised_is_a_database_lock_on_postgresql(pg):
    """Another process (any connection) sees the lock while the transaction holds it (SQLite
    serves one process: a thread lock is the whole story there)."""
    from sqlalchemy import create_engine, text

    database_url = pg.create("sb_serialised")

    db = Database(database_url, InProcessEventBus())
    other = create_engine(database_url)
    key = cluster.lock_key(cluster.TRAINING_DATA_LOCK)
    try:
        def free() -> bool:
            with other.connect() as conn:
                got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                   {"k": key}).scalar()
                conn.rollback()
                return got

        with db.session() as session, cluster.serialised(session, cluster.TRAINING_DATA_LOCK):
            assert not free()
            session.commit()
        assert free()
    finally:
        other.dispose()
        db.dispose()
