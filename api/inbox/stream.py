"""Server-sent events for the inbox, relayed from the event bus.

One :class:`EventStream` per process subscribes to the bus and keeps the last ``size`` events in
a ring buffer. A client that reconnects with ``Last-Event-ID`` gets exactly what it missed:

- in-process bus: from the ring (ids count per process);
- Redis bus: from the ring when its id is there, else from the Redis stream, whose ids are
  global — so a browser that reconnects to another replica resumes where it left off.

When its id has left the history (or is unknown: another process's, from before a restart),
it gets a ``resync`` event — reload your lists — as it does when the bus reports a gap.

Events carry ids and types only — never fan text or notes (the page fetches what it shows
through the authorised API) — and each person gets only the frames the inbox's read rule lets
them see (:mod:`api.inbox.visibility`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from api.events import GAP, Event, EventBus, EventHistory, EventId, Replay, id_order
from api.inbox import visibility
from api.inbox.visibility import Sight, ThreadState, Viewer
from api.routing.policy import TopicRule

log = logging.getLogger(__name__)

# Only these keys of an event's data reach browsers (``reason`` may quote a transfer note).
PUBLIC_KEYS = frozenset({"staff_id", "to_staff_id", "previous_staff_id", "presence", "previous",
                         "from", "to", "kind", "sender", "message_id", "assignee_id", "topic",
                         "priority", "note_id", "channel",
                         "network", "count", "window_s", "active"})  # alert.flood's

Threads = Callable[[set[int]], Awaitable[Mapping[int, ThreadState]]]


def public(ev: Event) -> dict:
    return {"type": ev.type, "conversation_id": ev.conversation_id,
            **{k: v for k, v in ev.data.items() if k in PUBLIC_KEYS}}


def frame(ev: Event) -> str:
    return f"id: {ev.id}\nevent: {ev.type}\ndata: {json.dumps(public(ev))}\n\n"


def bare_frame(ev: Event) -> str:
    """The event's type without its thread: "your lists may have changed"."""
    return (f"id: {ev.id}\nevent: {ev.type}\n"
            f"data: {json.dumps({'type': ev.type, 'conversation_id': None})}\n\n")


def resync_frame(after: EventId | None, head: EventId | None) -> str:
    """Reload your lists; ``head`` (when known) is where the stream goes on from."""
    at = f"id: {head}\n" if head is not None else ""
    return f"{at}event: resync\ndata: {json.dumps({'after': after})}\n\n"


class EventStream:
    def __init__(self, bus: EventBus, *, size: int = 1000, heartbeat_s: float = 15.0,
                 threads: Threads | None = None) -> None:
        """``threads``: the current state of threads by id (the per-person filter's input);
        without it, non-supervisors get thread events bare."""
        self.bus = bus
        self.history: EventHistory | None = bus if isinstance(bus, EventHistory) else None
        self.threads = threads
        self.ring: deque[Event] = deque(maxlen=size)
        self.heartbeat_s = heartbeat_s
        self._clients: set[asyncio.Queue[tuple[Event, ThreadState | None]]] = set()
        self._task: asyncio.Task | None = None
        self.sent = 0

    async def start(self) -> None:
        sub = self.bus.subscribe()

        async def pump() -> None:
            try:
                while True:
                    batch = [await sub.get(), *sub.pending()]
                    states = await self._states(batch) if self._clients else {}
                    for ev in batch:
                        if ev.type == GAP:
                            self.ring.clear()  # no resume across a gap from the ring
                        else:
                            self.ring.append(ev)
                        item = (ev, states.get(ev.conversation_id))
                        for q in list(self._clients):
                            if q.full():
                                continue  # a stuck client; it will resync after reconnecting
                            q.put_nowait(item)
            finally:
                sub.close()

        self._task = asyncio.create_task(pump())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def _states(self, events: list[Event]) -> Mapping[int, ThreadState]:
        ids = {ev.conversation_id for ev in events if ev.conversation_id is not None}
        if not ids or self.threads is None:
            return {}
        try:
            return await self.threads(ids)
        except Exception:  # noqa: BLE001 - unknown threads are shown bare, never whole
            log.exception("event stream: thread states unavailable")
            return {}

    def missed(self, last_id: EventId) -> tuple[list[Event], bool]:
        """Buffered events after ``last_id``, and whether some were lost (resync needed): its
        id left the ring, or is not one of ours (another process's, from before a restart).
        With a Redis bus "lost" means "not in the ring": the stream's history is asked next."""
        try:
            last = id_order(last_id)
        except ValueError:
            return [], True
        events = [ev for ev in self.ring if id_order(ev.id) > last]
        if self.history is not None:  # global ids: the ring must hold ``last_id`` itself
            return events, not any(id_order(ev.id) == last for ev in self.ring)
        if last == (0, 0):
            return events, False
        head = id_order(self.ring[-1].id) if self.ring else (0, 0)
        oldest = id_order(self.ring[0].id) if self.ring else (1, 0)
        return events, last > head or oldest > (last[0] + 1, last[1])

    async def _replay(self, last_id: EventId) -> Replay:
        events, lost = self.missed(last_id)
        if not lost or self.history is None:
            return Replay(events, lost)
        return await self.history.after(last_id, limit=self.ring.maxlen or 1000)

    async def _head(self) -> EventId | None:
        if self.history is not None:
            with contextlib.suppress(Exception):
                return await self.history.last_id()
            log.warning("event history unavailable; stream head from this process")
        return self.ring[-1].id if self.ring else (None if self.history else 0)

    async def follow(self, *, last_id: EventId | None, disconnected,
                     viewer: Viewer | None = None,
                     topics: Mapping[str, TopicRule] | None = None) -> AsyncIterator[str]:
        """The SSE text of one client: replay after ``last_id``, then live events; with
        ``viewer``, only what that person may see."""
        q: asyncio.Queue[tuple[Event, ThreadState | None]] = asyncio.Queue(maxsize=5000)
        self._clients.add(q)  # before the replay: what it misses comes live (ids dedupe)
        topics = topics or {}

        def render(ev: Event, state: ThreadState | None) -> str | None:
            if viewer is None:
                return frame(ev)
            seen_as = visibility.sight(viewer, ev, state, topics)
            if seen_as is Sight.full:
                return frame(ev)
            return bare_frame(ev) if seen_as is Sight.bare else None

        try:
            yield "retry: 1500\n\n"
            if last_id is None:
                seen = told = await self._head()
                at = "" if seen is None else f"id: {seen}\n"
                yield f"{at}event: hello\ndata: {json.dumps({'last_id': seen})}\n\n"
            else:
                seen = told = last_id
                try:
                    replay = await self._replay(last_id)
                except Exception as exc:  # noqa: BLE001 - Redis away: re-sync, carry on live
                    log.warning("event replay unavailable (%s): resync", type(exc).__name__)
                    replay = Replay([], lost=True)
                if replay.lost:
                    head = None
                    if not replay.events:  # go on from the end: the reload covers the rest
                        head = await self._head()
                        if head is not None:
                            seen = told = head
                    yield resync_frame(last_id, head)
                states = await self._states(replay.events)
                for ev in replay.events:
                    seen = ev.id
                    if ev.type == GAP:
                        told = ev.id
                        yield resync_frame(last_id, ev.id)
                        continue
                    text = render(ev, states.get(ev.conversation_id))
                    if text is not None:
                        told = ev.id
                        yield text
            while True:
                try:
                    ev, state = await asyncio.wait_for(q.get(), self.heartbeat_s)
                except TimeoutError:
                    if await disconnected():
                        return
                    if seen is not None and seen != told:
                        told = seen  # moves Last-Event-ID past events this person may not see
                        yield f"id: {seen}\n\n"
                    else:
                        yield ": keep-alive\n\n"
                    continue
                if seen is not None and _not_after(ev.id, seen):
                    continue
                seen = ev.id
                if ev.type == GAP:
                    told = ev.id
                    yield resync_frame(None, ev.id)
                    continue
                text = render(ev, state)
                if text is not None:
                    told = ev.id
                    self.sent += 1
                    yield text
        finally:
            self._clients.discard(q)


def _not_after(event_id: EventId, seen: EventId) -> bool:
    try:
        return id_order(event_id) <= id_order(seen)
    except ValueError:
        return False


def thread_lookup(db: Any) -> Threads:
    """The threads' states from the database (:class:`api.db.Database`), one query a batch."""

    async def lookup(ids: set[int]) -> Mapping[int, ThreadState]:
        return await db.run(visibility.thread_states, ids=ids)

    return lookup
