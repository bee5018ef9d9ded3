"""Server-sent events for the inbox, relayed from the event bus.

One :class:`EventStream` per process subscribes to the bus and keeps the last ``size`` events in
a ring buffer; a client that reconnects with ``Last-Event-ID`` gets what it missed from the
buffer, or a ``resync`` event (reload your lists) when its id has already left the buffer.
Events carry ids and types only — never fan text or notes (the page fetches what it shows
through the authorised API). With a Redis bus and several replicas, ids are per process: sticky
sessions keep a browser on one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator

from api.events import Event, EventBus

log = logging.getLogger(__name__)

# Only these keys of an event's data reach browsers (``reason`` may quote a transfer note).
PUBLIC_KEYS = frozenset({"staff_id", "to_staff_id", "previous_staff_id", "presence", "previous",
                         "from", "to", "kind", "sender", "message_id", "assignee_id", "topic",
                         "priority", "note_id", "channel",
                         "network", "count", "window_s", "active"})  # alert.flood's


def public(ev: Event) -> dict:
    return {"type": ev.type, "conversation_id": ev.conversation_id,
            **{k: v for k, v in ev.data.items() if k in PUBLIC_KEYS}}


def frame(ev: Event) -> str:
    return f"id: {ev.id}\nevent: {ev.type}\ndata: {json.dumps(public(ev))}\n\n"


class EventStream:
    def __init__(self, bus: EventBus, *, size: int = 1000, heartbeat_s: float = 15.0) -> None:
        self.bus = bus
        self.ring: deque[Event] = deque(maxlen=size)
        self.heartbeat_s = heartbeat_s
        self._clients: set[asyncio.Queue[Event]] = set()
        self._task: asyncio.Task | None = None
        self.sent = 0

    async def start(self) -> None:
        sub = self.bus.subscribe()

        async def pump() -> None:
            try:
                async for ev in sub:
                    self.ring.append(ev)
                    for q in list(self._clients):
                        if q.full():
                            continue  # a stuck client; it will resync after reconnecting
                        q.put_nowait(ev)
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

    def missed(self, last_id: int) -> tuple[list[Event], bool]:
        """Buffered events after ``last_id``, and whether some were lost (resync needed)."""
        events = [ev for ev in self.ring if ev.id > last_id]
        lost = bool(self.ring) and self.ring[0].id > last_id + 1 and last_id > 0
        return events, lost

    async def follow(self, *, last_id: int | None, disconnected) -> AsyncIterator[str]:
        """The SSE text of one client: replay after ``last_id``, then live events."""
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=5000)
        self._clients.add(q)
        try:
            yield "retry: 1500\n\n"
            seen = last_id or 0
            if last_id is not None:
                events, lost = self.missed(last_id)
                if lost:
                    yield f"event: resync\ndata: {json.dumps({'after': last_id})}\n\n"
                for ev in events:
                    seen = ev.id
                    yield frame(ev)
            else:
                seen = self.ring[-1].id if self.ring else 0
                yield (f"id: {seen}\nevent: hello\n"
                       f"data: {json.dumps({'last_id': seen})}\n\n")
            while True:
                try:
                    ev = await asyncio.wait_for(q.get(), self.heartbeat_s)
                except TimeoutError:
                    if await disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if ev.id <= seen:
                    continue
                seen = ev.id
                self.sent += 1
                yield frame(ev)
        finally:
            self._clients.discard(q)
