"""The event bus: every conversation change is published, only after its commit.

Service functions call :func:`publish_on_commit`; the session's ``after_commit`` hook hands the
events to the bus, ``after_rollback`` drops them (Zulip's ``send_event_on_commit``). The bus is an
interface (encode/broadcaster style) with two implementations:

- :class:`InProcessEventBus` (the default, one process): ids are integers counted per process.
- :class:`RedisEventBus` (``REDIS_URL`` set, several replicas): every event goes through one
  Redis stream; its ids (``"1733066400000-3"``) are global and ordered across replicas, and the
  stream is the history an inbox resumes from on any replica.

An event id is therefore ``int | str``; code that compares ids uses :func:`id_order`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

EventId = int | str  # in-process: 1, 2, ...; Redis: the stream entry id "ms-seq"
# Told to subscribers when events may have been lost (a Redis outage longer than the local
# buffer, a Redis restart that emptied the stream): whoever shows events re-syncs from the
# database.
GAP = "stream.gap"


@dataclass(frozen=True)
class Event:
    type: str
    conversation_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: EventId = 0


_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")


def id_order(event_id: EventId) -> tuple[int, int]:
    """An id as a sortable pair: ``5`` → (5, 0), ``"1733066400000-3"`` → (1733066400000, 3).
    ValueError for anything else."""
    if isinstance(event_id, int):
        return (event_id, 0)
    m = _STREAM_ID.match(event_id.strip())
    if not m:
        raise ValueError(f"not an event id: {event_id[:40]!r}")
    return (int(m.group(1)), int(m.group(2) or 0))


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...
    async def get(self) -> Event: ...
    def pending(self) -> list[Event]: ...
    def close(self) -> None: ...


class EventBus(Protocol):
    published: int

    def publish(self, event: Event) -> None:
        """Publish an event; callable from any thread, never blocks and never raises."""

    def subscribe(self, *, types: set[str] | None = None) -> Subscription:
        """Subscribe to events (all, or only ``types``) on the running event loop."""

    async def start(self) -> None:
        """Open connections and start background work (the app's lifespan)."""

    async def stop(self) -> None:
        """Hand over what is still queued (briefly) and close."""


@dataclass(frozen=True)
class Replay:
    """The events after an id, and whether some between are gone (the reader must re-sync)."""

    events: list[Event]
    lost: bool


@runtime_checkable
class EventHistory(Protocol):
    """A bus whose events outlive the process (Redis): any replica can replay them."""

    async def last_id(self) -> str:
        """The newest event's id ("0-0" when there is none)."""

    async def after(self, last_id: EventId, *, limit: int) -> Replay:
        """Up to ``limit`` events after ``last_id``; ``lost`` when ``last_id`` is no longer
        (or never was) in the history, or more than ``limit`` followed it."""


class _QueueSubscription:
    def __init__(self, subs: set[_QueueSubscription], types: set[str] | None) -> None:
        self.subs = subs
        self.types = types
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
        self.loop = asyncio.get_running_loop()

    def offer(self, ev: Event) -> None:
        if self.types is None or ev.type in self.types:
            try:
                self.queue.put_nowait(ev)
            except asyncio.QueueFull:
                log.warning("event subscriber full; dropping event id=%s", ev.id)

    async def get(self) -> Event:
        return await self.queue.get()

    def pending(self) -> list[Event]:
        """Every event already queued, without waiting."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self.subs.discard(self)


def _fan_out(subs: set[_QueueSubscription], event: Event) -> None:
    for sub in list(subs):
        if _on_loop(sub.loop):
            sub.offer(event)
        else:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                sub.loop.call_soon_threadsafe(sub.offer, event)


class InProcessEventBus:
    """Fan-out to asyncio queues in this process; thread-safe ``publish``."""

    def __init__(self) -> None:
        self._subs: set[_QueueSubscription] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.published = 0

    def publish(self, event: Event) -> None:
        with self._lock:
            event = Event(event.type, event.conversation_id, event.data, next(self._ids))
            self.published += 1
        _fan_out(self._subs, event)
        log.debug("event %s id=%s conversation=%s", event.type, event.id, event.conversation_id)

    def subscribe(self, *, types: set[str] | None = None) -> _QueueSubscription:
        sub = _QueueSubscription(self._subs, types)
        self._subs.add(sub)
        return sub

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


_PENDING = "pending_events"


def publish_on_commit(session: Session, event: Event) -> None:
    """Queue ``event`` to be published when ``session`` commits (dropped on rollback)."""
    session.info.setdefault(_PENDING, []).append(event)


def attach_bus(factory: sessionmaker, bus: EventBus) -> None:
    """Make sessions from ``factory`` publish their queued events to ``bus`` after commit."""
    factory.kw.setdefault("info", {})
    factory.kw["info"]["event_bus"] = bus

    @sa_event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        events = session.info.pop(_PENDING, [])
        target = session.info.get("event_bus")
        for ev in events:
            target.publish(ev)

    @sa_event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)


class RedisEventBus:
    """Events through one Redis stream, shared by every replica (``REDIS_URL``).

    ``publish`` only appends to a bounded local buffer (no I/O: it runs in the commit hook, maybe
    on a worker thread); a writer task hands the buffer to Redis in order (``XADD`` with an
    approximate ``MAXLEN``) and retries while Redis is unreachable, so a blip loses nothing.
    When Redis stays away until the buffer is full, the oldest events are dropped and the first
    write after it is a :data:`GAP` marker: every inbox re-syncs from the database. A reader
    task per process (``XREAD BLOCK``) hands each entry, in stream order, to this process's
    subscribers; after a Redis restart that emptied the stream it tells them :data:`GAP` too.

    A write whose answer was lost may be retried and land twice: every event carries a publish
    id (``uid``) and readers drop the second copy.
    """

    def __init__(self, url: str, *, stream: str, maxlen: int = 50_000, buffer: int = 10_000,
                 block_ms: int = 5_000, retry_max_s: float = 2.0,
                 connect_wait_s: float = 2.0) -> None:
        self.url = url
        self.connect_wait_s = connect_wait_s
        self.stream = stream
        self.maxlen = maxlen
        self.buffer = buffer
        self.block_ms = block_ms
        self.retry_max_s = retry_max_s
        self.published = 0  # handed to publish()
        self.written = 0  # in the stream
        self.dropped = 0  # lost to a full buffer while Redis was away
        self._subs: set[_QueueSubscription] = set()
        self._lock = threading.Lock()
        self._pending: collections.deque[tuple[int, str, Event]] = collections.deque()
        self._seq = itertools.count(1)
        self._unmarked = 0  # dropped events no GAP marker has announced yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._positioned: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._seen_uids: collections.deque[str] = collections.deque(maxlen=10_000)
        self._seen_set: set[str] = set()
        self._redis: Any = None  # commands (XADD, XRANGE)
        self._reader_redis: Any = None  # XREAD BLOCK holds its connection

    # -- publishing (any thread) -----------------------------------------------------------------
    def publish(self, event: Event) -> None:
        uid = uuid.uuid4().hex
        with self._lock:
            if len(self._pending) >= self.buffer:
                self._pending.popleft()
                self.dropped += 1
                self._unmarked += 1
                if self._unmarked == 1:
                    log.warning("event buffer full (%d) while Redis is unreachable: dropping the "
                                "oldest events; inboxes will re-sync", self.buffer)
            self._pending.append((next(self._seq), uid, event))
            self.published += 1
            loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            if _on_loop(loop):
                wake.set()
            else:
                with contextlib.suppress(RuntimeError):  # the loop is closed: stop() flushed
                    loop.call_soon_threadsafe(wake.set)

    @property
    def pending(self) -> int:
        """Events waiting for Redis."""
        return len(self._pending)

    def subscribe(self, *, types: set[str] | None = None) -> _QueueSubscription:
        sub = _QueueSubscription(self._subs, types)
        self._subs.add(sub)
        return sub

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=3.0)
        self._reader_redis = aioredis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2.0,
            socket_timeout=self.block_ms / 1000 + 3.0)
        self._positioned = asyncio.Event()
        self._stopping = False
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            if self._pending:
                self._wake.set()
        self._tasks = [asyncio.create_task(self._read(), name="events-redis-reader"),
                       asyncio.create_task(self._write(), name="events-redis-writer")]
        try:  # subscribers hear everything published after start() (Redis up)
            await asyncio.wait_for(self._positioned.wait(), self.connect_wait_s)
        except TimeoutError:
            log.warning("Redis unreachable at %s: events wait until it is", self.stream)

    async def stop(self, *, flush_s: float = 2.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_s
        while self._pending and self._tasks and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self._pending:
            log.warning("event bus stopping with %d events Redis never got", len(self._pending))
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, stuck = await asyncio.wait(self._tasks, timeout=1.0)
            if stuck and self._reader_redis is not None:
                # A cancelled blocking XREAD may sit out its block: end it by closing its socket.
                with contextlib.suppress(Exception):
                    await self._reader_redis.connection_pool.disconnect()
                await asyncio.wait(stuck, timeout=self.block_ms / 1000 + 1)
        self._tasks = []
        with self._lock:
            self._loop = self._wake = None
        for client in (self._redis, self._reader_redis):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    # -- the writer ------------------------------------------------------------------------------
    async def _write(self) -> None:
        await self._positioned.wait()  # the reader's start position predates our first write
        retry, down = 0.05, False
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    batch = list(itertools.islice(self._pending, 200))
                    unmarked = self._unmarked
                if not batch and not unmarked:
                    break
                try:
                    pipe = self._redis.pipeline(transaction=False)
                    if unmarked:
                        pipe.xadd(self.stream, _encode(uuid.uuid4().hex, Event(
                            GAP, None, {"count": unmarked})), maxlen=self.maxlen, approximate=True)
                    for _seq, uid, ev in batch:
                        fields = _encode(uid, ev)
                        if fields is not None:
                            pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
                except (RedisError, OSError) as exc:
                    if not down:
                        log.warning("Redis unreachable for events (%s); %d waiting, up to %d "
                                    "kept", type(exc).__name__, len(batch), self.buffer)
                        down = True
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, self.retry_max_s)
                    continue
                except Exception:  # noqa: BLE001 - keep writing; the next round retries
                    log.exception("event writer round failed")
                    await asyncio.sleep(self.retry_max_s)
                    continue
                if down:
                    log.info("Redis reachable again; handing over %d waiting events",
                             len(self._pending))
                    down = False
                retry = 0.05
                with self._lock:
                    self._unmarked -= unmarked
                    last = batch[-1][0] if batch else 0
                    while self._pending and self._pending[0][0] <= last:
                        self._pending.popleft()
                    self.written += len(batch)

    # -- the reader ------------------------------------------------------------------------------
    async def _read(self) -> None:
        last: str | None = None
        check, retry, down = False, 0.05, False
        while not self._stopping:
            try:
                if last is None:
                    last = await self.last_id()
                    self._positioned.set()
                elif check:
                    if not await self._retained(last):
                        # Redis lost the stream (a restart): what this process had not read yet
                        # is gone; readers re-sync from the database from the current end on.
                        last = await self.last_id()
                        log.warning("event stream lost its history; inboxes re-sync")
                        _fan_out(self._subs, Event(GAP, None, {}, last))
                    check = False
                reply = await self._reader_redis.xread({self.stream: last}, count=500,
                                                       block=self.block_ms)
                if down:
                    log.info("event stream readable again")
                    down = False
                retry = 0.05
                streams = reply.items() if isinstance(reply, dict) else reply or ()  # RESP3/2
                for _key, entries in streams:
                    for entry_id, fields in entries:
                        last = entry_id
                        ev = self._fresh(entry_id, fields)
                        if ev is not None:
                            _fan_out(self._subs, ev)
            except (RedisError, OSError) as exc:
                if not down:
                    log.warning("event stream unreadable (%s); retrying", type(exc).__name__)
                    down = True
                check = last is not None
                await asyncio.sleep(retry)
                retry = min(retry * 2, self.retry_max_s)
            except Exception:  # noqa: BLE001 - keep reading; the next round retries
                log.exception("event stream reader round failed")
                check = last is not None
                await asyncio.sleep(self.retry_max_s)

    def _fresh(self, entry_id: str, fields: dict[str, str]) -> Event | None:
        """The entry's event, or None when this publish id was already delivered."""
        uid = fields.get("uid", "")
        if uid:
            if uid in self._seen_set:
                return None
            if len(self._seen_uids) == self._seen_uids.maxlen:
                self._seen_set.discard(self._seen_uids[0])
            self._seen_uids.append(uid)
            self._seen_set.add(uid)
        return _decode(entry_id, fields)

    # -- history (any replica replays) -----------------------------------------------------------
    async def last_id(self) -> str:
        entries = await self._redis.xrevrange(self.stream, "+", "-", count=1)
        return entries[0][0] if entries else "0-0"

    async def _retained(self, entry_id: str) -> bool:
        if entry_id == "0-0":
            return True
        return bool(await self._redis.xrange(self.stream, entry_id, entry_id, count=1))

    async def after(self, last_id: EventId, *, limit: int) -> Replay:
        try:
            ms, seq = id_order(last_id)
        except ValueError:
            return Replay([], lost=True)
        start = f"{ms}-{seq}"
        uids: set[str] = set()
        if start == "0-0":
            entries = await self._redis.xrange(self.stream, "-", "+", count=limit + 1)
        else:
            entries = await self._redis.xrange(self.stream, start, "+", count=limit + 2)
            if not entries or entries[0][0] != start:
                return Replay([], lost=True)  # trimmed, or from before a Redis restart
            uids.add(entries[0][1].get("uid", ""))  # a second copy of it is no news either
            entries = entries[1:]
        if len(entries) > limit:
            return Replay([], lost=True)
        events = []
        for entry_id, fields in entries:
            uid = fields.get("uid", "")
            if uid and uid in uids:
                continue
            uids.add(uid)
            events.append(_decode(entry_id, fields))
        return Replay(events, lost=False)  # a GAP marker among them is the caller's to tell


def _encode(uid: str, event: Event) -> dict[str, str] | None:
    """The stream entry of an event (None, logged, for data JSON cannot carry)."""
    try:
        data = json.dumps(event.data, default=str)
    except (TypeError, ValueError):
        log.exception("event %s (conversation %s) not publishable", event.type,
                      event.conversation_id)
        return None
    return {"type": event.type,
            "conversation": "" if event.conversation_id is None else str(event.conversation_id),
            "data": data, "uid": uid}


def _decode(entry_id: str, fields: dict[str, str]) -> Event:
    conversation = fields.get("conversation") or ""
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError:
        data = {}
    return Event(fields.get("type", ""), int(conversation) if conversation.isdigit() else None,
                 data if isinstance(data, dict) else {}, entry_id)
