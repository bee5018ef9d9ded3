"""The Redis event bus (REDIS_URL): one stream shared by every replica, global ordered ids,
replay after an id, and what happens while Redis is away (real Redis: the machine's shared one
under a key prefix of the test's own, or a private redis-server the test stops and restarts)."""

from __future__ import annotations

import asyncio
import threading

import redis

from api.events import GAP, Event, RedisEventBus, id_order
from tests.support.redis_servers import (  # noqa: F401 - fixtures
    SHARED_REDIS_URL,
    private_redis_fixture,
    redis_prefix_fixture,
)


def bus_on(url: str, stream: str, **kw) -> RedisEventBus:
    kw.setdefault("retry_max_s", 0.1)
    kw.setdefault("block_ms", 500)
    return RedisEventBus(url, stream=stream, **kw)


async def take(sub, n: int, timeout: float = 5.0) -> list[Event]:
    return [await asyncio.wait_for(sub.get(), timeout) for _ in range(n)]


async def test_events_reach_every_replica_in_order_with_global_ids(redis_prefix):
    stream = f"{redis_prefix}:events"
    a, b = bus_on(SHARED_REDIS_URL, stream), bus_on(SHARED_REDIS_URL, stream)
    await a.start()
    await b.start()
    try:
        on_a, on_b = a.subscribe(), b.subscribe()

        def commits() -> None:  # after_commit hooks run on worker threads
            for i in range(100):
                a.publish(Event("message.created", i, {"message_id": i}))
                b.publish(Event("note.created", i, {"note_id": i}))

        threads = [threading.Thread(target=commits) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got_a, got_b = await take(on_a, 400), await take(on_b, 400)
        assert [e.id for e in got_a] == [e.id for e in got_b]  # one order for every replica
        ids = [id_order(e.id) for e in got_b]
        assert ids == sorted(ids) and len(set(ids)) == 400
        assert all(isinstance(e.id, str) for e in got_b)
        # each publisher's own events keep their order
        mine = [e.data["message_id"] for e in got_b if e.type == "message.created"]
        assert sorted(mine) == sorted(list(range(100)) * 2)
        assert a.published == b.published == 200 and a.pending == b.pending == 0
    finally:
        await a.stop()
        await b.stop()


async def test_replay_after_an_id_from_any_replica(redis_prefix):
    stream = f"{redis_prefix}:events"
    a, b = bus_on(SHARED_REDIS_URL, stream), bus_on(SHARED_REDIS_URL, stream)
    await a.start()
    await b.start()
    try:
        sub = a.subscribe()
        for i in range(6):
            a.publish(Event("message.created", 7, {"message_id": i}))
        got = await take(sub, 6)
        replay = await b.after(got[2].id, limit=100)
        assert not replay.lost
        assert [e.id for e in replay.events] == [e.id for e in got[3:]]
        assert [e.data["message_id"] for e in replay.events] == [3, 4, 5]
        assert (await b.after(got[-1].id, limit=100)).events == []
        assert await b.last_id() == got[-1].id
        assert (await b.after(got[0].id, limit=3)).lost  # more missed than may be replayed
        assert (await b.after("12345-0", limit=100)).lost  # never in this stream
        assert (await b.after("not-an-id", limit=100)).lost
        client = redis.Redis.from_url(SHARED_REDIS_URL)
        client.xtrim(stream, maxlen=2, approximate=False)  # what Redis trimmed cannot be replayed
        client.close()
        assert (await b.after(got[2].id, limit=100)).lost
        assert not (await b.after(got[4].id, limit=100)).lost
    finally:
        await a.stop()
        await b.stop()


async def test_a_write_retried_twice_is_delivered_once(redis_prefix):
    stream = f"{redis_prefix}:events"
    bus = bus_on(SHARED_REDIS_URL, stream)
    await bus.start()
    try:
        sub = bus.subscribe()
        client = redis.Redis.from_url(SHARED_REDIS_URL, decode_responses=True)
        fields = {"type": "note.created", "conversation": "3", "data": "{}", "uid": "u-1"}
        first = client.xadd(stream, fields)
        client.xadd(stream, fields)  # the same publish, written again after a lost answer
        bus.publish(Event("note.created", 4))
        got = await take(sub, 2)
        assert [e.conversation_id for e in got] == [3, 4]
        assert len((await bus.after(first, limit=10)).events) == 1  # the copy is skipped
        client.close()
    finally:
        await bus.stop()


async def test_publish_while_redis_is_down_waits_then_arrives_in_order(private_redis):
    private_redis.stop()
    bus = bus_on(private_redis.url, "sb:events", connect_wait_s=0.2)
    await bus.start()  # Redis down: starts anyway
    try:
        sub = bus.subscribe()
        # the commit hook never blocks nor raises, Redis or not
        await asyncio.to_thread(lambda: [bus.publish(Event("message.created", i))
                                         for i in range(5)])
        assert bus.pending == 5
        await asyncio.sleep(0.3)
        assert sub.pending() == []  # nothing reached anyone yet
        private_redis.start()
        got = await take(sub, 5)
        assert [e.conversation_id for e in got] == [0, 1, 2, 3, 4]
        assert bus.pending == 0 and bus.dropped == 0
    finally:
        await bus.stop()


async def test_redis_restart_tells_subscribers_to_resync(private_redis):
    bus = bus_on(private_redis.url, "sb:events")
    await bus.start()
    try:
        sub = bus.subscribe()
        bus.publish(Event("message.created", 1))
        [before] = await take(sub, 1)
        private_redis.stop()
        private_redis.start()  # empty: its stream and history are gone
        gap = await asyncio.wait_for(sub.get(), 10)
        assert gap.type == GAP
        assert (await bus.after(before.id, limit=100)).lost  # resuming from before it re-syncs
        bus.publish(Event("message.created", 2))
        [after] = await take(sub, 1)
        assert after.conversation_id == 2 and id_order(after.id) > id_order(before.id)
    finally:
        await bus.stop()


async def test_outage_longer_than_the_buffer_marks_a_gap(private_redis):
    stream = "sb:events"
    publisher = bus_on(private_redis.url, stream, buffer=100)
    reader = bus_on(private_redis.url, stream)
    await publisher.start()
    await reader.start()
    try:
        sub = reader.subscribe()
        private_redis.stop()
        for i in range(103):
            publisher.publish(Event("message.created", i))
        assert publisher.pending == 100 and publisher.dropped == 3
        private_redis.start()
        first = await asyncio.wait_for(sub.get(), 10)
        while first.type == GAP and first.data.get("count") is None:
            first = await asyncio.wait_for(sub.get(), 10)  # the reader's own restart notice
        assert first.type == GAP and first.data["count"] == 3  # the publisher's: 3 lost
        kept = await take(sub, 100)
        assert [e.conversation_id for e in kept] == list(range(3, 103))
    finally:
        await publisher.stop()
        await reader.stop()
