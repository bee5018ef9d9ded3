"""The event bus: every conversation change is published, only after its commit.

Service functions call :func:`publish_on_commit`; the session's ``after_commit`` hook hands the
events to the bus, ``after_rollback`` drops them (Zulip's ``send_event_on_commit``). The bus is an
interface (encode/broadcaster style) with an in-process implementation; a Redis one comes with
scale-out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str
    conversation_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: int = 0


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...
    async def get(self) -> Event: ...
    def close(self) -> None: ...


class EventBus(Protocol):
    def publish(self, event: Event) -> None:
        """Publish an event; callable from any thread."""

    def subscribe(self, *, types: set[str] | None = None) -> Subscription:
        """Subscribe to events (all, or only ``types``)."""


class _QueueSubscription:
    def __init__(self, bus: InProcessEventBus, types: set[str] | None) -> None:
        self.bus = bus
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

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self.bus._subs.discard(self)


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
        for sub in list(self._subs):
            if _on_loop(sub.loop):
                sub.offer(event)
            else:
                sub.loop.call_soon_threadsafe(sub.offer, event)
        log.debug("event %s id=%s conversation=%s", event.type, event.id, event.conversation_id)

    def subscribe(self, *, types: set[str] | None = None) -> _QueueSubscription:
        sub = _QueueSubscription(self, types)
        self._subs.add(sub)
        return sub


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
