"""The inbox's live stream across replicas (REDIS_URL): an event committed on one replica reaches
an inbox on another; an inbox that reconnects anywhere with its Last-Event-ID gets exactly what
it missed; each person gets only what the inbox's read rule lets them see; a Redis outage never
fails a request and ends in a re-sync. Real switchboards under uvicorn ("replicas") on one
database and one Redis."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

import httpx
import pytest

from api.events import id_order
from tests.api.conftest import DEMO_PASSWORD, LiveServer
from tests.support.redis_servers import (  # noqa: F401 - fixtures
    SHARED_REDIS_URL,
    private_redis_fixture,
    redis_prefix_fixture,
)

LOST = "I can't find my friend and she isn't answering"
STREAM_ID = re.compile(r"\d+-\d+")


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str
    data: dict


class Sse:
    """One inbox's EventSource: frames in order (comments and id-only frames skipped)."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.client, self.url, self.headers = client, url, headers

    async def __aenter__(self) -> Sse:
        self._cm = self.client.stream("GET", self.url + "/api/v1/events", headers=self.headers)
        resp = await self._cm.__aenter__()
        assert resp.status_code == 200
        self._lines = resp.aiter_lines()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._cm.__aexit__(*exc)

    async def next(self, timeout: float = 10.0) -> Frame:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Frame:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if "event" in fields:
                    return Frame(fields.get("id"), fields["event"],
                                 json.loads(fields.get("data") or "{}"))
                fields = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        raise AssertionError("stream ended")

    async def until(self, pred, timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the first one ``pred`` accepts."""
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while not got or not pred(got[-1]):
            got.append(await self.next(max(0.1, deadline - time.monotonic())))
        return got


async def bearer(c: httpx.AsyncClient, base: str, handle: str) -> dict[str, str]:
    r = await c.post(f"{base}/api/v1/auth/login",
                     json={"handle": handle, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def set_presence(c: httpx.AsyncClient, base: str, who: dict[str, str], presence: str):
    r = await c.put(f"{base}/api/v1/staff/me/presence", json={"presence": presence},
                    headers=who)
    assert r.status_code == 200, r.text
    return r


@pytest.fixture
def replicas(make_settings, triage_engine, redis_prefix):
    """Start switchboards on the test's database and Redis; ``redis_url`` may point elsewhere
    (a private server), ``None`` gives the default in-process bus."""
    servers: list[LiveServer] = []

    def start(redis_url: str | None = SHARED_REDIS_URL, **overrides) -> LiveServer:
        extra = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix} if redis_url else {}
        servers.append(LiveServer(make_settings(**extra, **overrides),
                                  triage=triage_engine).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def presence_of(staff_id: int, presence: str):
    return lambda f: (f.event == "staff.presence_changed" and f.data["staff_id"] == staff_id
                      and f.data["presence"] == presence)


async def test_event_on_one_replica_reaches_another_and_resumes_anywhere(replicas):
    a, b = replicas(), replicas()
    async with httpx.AsyncClient(timeout=20) as c:
        karim = await bearer(c, a.url, "karim")
        me = (await c.get(f"{a.url}/api/v1/staff/me", headers=karim)).json()["id"]
        # committed on A, live on B, with a stream id
        async with Sse(c, b.url, karim) as on_b:
            assert (await on_b.next()).event == "hello"
            await set_presence(c, a.url, karim, "online")
            [*_, ev] = await on_b.until(presence_of(me, "online"))
            assert STREAM_ID.fullmatch(ev.id)
        # an inbox on A reads up to an id, then goes away
        async with Sse(c, a.url, karim) as on_a:
            await on_a.next()
            await set_presence(c, a.url, karim, "away")
            last = (await on_a.until(presence_of(me, "away")))[-1].id
        for p in ("online", "away", "online"):  # missed while disconnected
            await set_presence(c, a.url, karim, p)
        fresh = replicas()  # started after all this: nothing of it in its memory
        resume = {**karim, "Last-Event-ID": last}
        async with Sse(c, b.url, resume) as on_b, Sse(c, fresh.url, resume) as on_fresh:
            replayed = {}
            for name, stream in (("b", on_b), ("fresh", on_fresh)):
                got = await presence_moves(stream, 3)
                assert [f.data["presence"] for f in got
                        if f.event == "staff.presence_changed"] == ["online", "away", "online"]
                assert all(f.event != "resync" for f in got)
                assert id_order(got[0].id) > id_order(last)
                replayed[name] = [f.id for f in got]
            assert replayed["b"] == replayed["fresh"]  # the same events, the same global ids
            await set_presence(c, a.url, karim, "away")  # and then live, once, after them
            for name, stream in (("b", on_b), ("fresh", on_fresh)):
                nxt = await stream.next()
                assert nxt.data == {"type": "staff.presence_changed", "conversation_id": None,
                                    "staff_id": me, "presence": "away", "previous": "online"}
                assert id_order(nxt.id) > id_order(replayed[name][-1])


async def presence_moves(stream: Sse, n: int) -> list[Frame]:
    """Frames up to the ``n``-th presence change."""
    got: list[Frame] = []
    while sum(f.event == "staff.presence_changed" for f in got) < n:
        got.append(await stream.next())
    return got


@pytest.mark.parametrize("bus", ["in-process", "redis"])
async def test_each_person_sees_only_threads_they_may_read(bus, replicas):
    """Karim (safety skill) gets the urgent thread; Tom (no safety skill) may not open it and
    gets none of its events — only bare status changes; Laura (supervisor) gets everything."""
    if bus == "redis":
        # B only serves the inboxes: its relay does not poll for A's turns (one turn, one
        # replica is the claims' business, not this test's)
        a, b = replicas(), replicas(RELAY_POLL_S=3600)
    else:
        a = b = replicas(redis_url=None)
    async with httpx.AsyncClient(timeout=20) as c:
        karim, tom, laura = [await bearer(c, a.url, h) for h in ("karim", "tom", "laura")]
        tom_id = (await c.get(f"{a.url}/api/v1/staff/me", headers=tom)).json()["id"]
        await set_presence(c, a.url, karim, "online")
        async with Sse(c, b.url, karim) as k, Sse(c, b.url, tom) as t, \
                Sse(c, b.url, laura) as sup:
            for s in (k, t, sup):
                assert (await s.next()).event == "hello"
            r = await c.post(f"{a.url}/webhooks/rest/webhook",
                             json={"sender": "fan-lost", "message": LOST})
            assert r.status_code == 200
            [conv] = (await c.get(f"{a.url}/api/v1/conversations", headers=karim)).json()
            assert conv["assignee"]["handle"] == "karim"
            cid = conv["id"]
            karims = await k.until(lambda f: f.event == "conversation.assigned")
            await set_presence(c, a.url, tom, "online")  # after every event of the thread
            karims += await k.until(presence_of(tom_id, "online"))
            toms = await t.until(presence_of(tom_id, "online"))
            lauras = await sup.until(presence_of(tom_id, "online"))
        assert (await c.get(f"{a.url}/api/v1/conversations/{cid}/context",
                            headers=tom)).status_code == 403  # the read rule itself
    about = {f.event for f in karims if f.data.get("conversation_id") == cid}
    assert {"conversation.assigned", "message.created"} <= about
    assert {"conversation.assigned", "message.created"} <= {
        f.event for f in lauras if f.data.get("conversation_id") == cid}
    assert all(f.data.get("conversation_id") in (None,) for f in toms)
    assert "message.created" not in {f.event for f in toms}
    bare = [f for f in toms if f.event == "conversation.status_changed"]
    assert bare and all(f.data == {"type": "conversation.status_changed",
                                   "conversation_id": None} for f in bare)


async def test_redis_outage_never_fails_a_request_and_inboxes_resync(private_redis, replicas):
    a, b = replicas(private_redis.url), replicas(private_redis.url)
    async with httpx.AsyncClient(timeout=20) as c:
        karim = await bearer(c, a.url, "karim")
        me = (await c.get(f"{a.url}/api/v1/staff/me", headers=karim)).json()["id"]
        async with Sse(c, b.url, karim) as on_b:
            await on_b.next()
            await set_presence(c, a.url, karim, "online")
            before = (await on_b.until(presence_of(me, "online")))[-1].id
            private_redis.stop()
            started = time.monotonic()
            await set_presence(c, a.url, karim, "away")  # the commit hook does not wait
            assert time.monotonic() - started < 1.0
            private_redis.start()  # empty: the stream and its history are gone
            await on_b.until(lambda f: f.event == "resync", timeout=15)
            await set_presence(c, a.url, karim, "online")
            await on_b.until(presence_of(me, "online"))  # live again after the re-sync
        # an inbox that comes back with an id from before the restart is told to re-sync
        async with Sse(c, b.url, {**karim, "Last-Event-ID": before}) as again:
            frame = await again.next()
            assert frame.event == "resync" and STREAM_ID.fullmatch(frame.id)
