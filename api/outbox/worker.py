"""The delivery worker: sends the outbox's rows, in order per conversation, with retries.

Its own component (started in the app's lifespan): it leases due rows, hands each to its
channel's sender and records the outcome — sent, retried later (exponential back-off with
jitter, stored on the row), failed for good, or dead after ``OUTBOX_MAX_ATTEMPTS``. The paths
that store replies only wake it (:meth:`OutboxWorker.deliver_conversation` delivers a
conversation's rows at once, :meth:`OutboxWorker.wake` starts a round), and a round every
``OUTBOX_POLL_S`` picks up retries and the rows of a replica that died.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from api.db import Database
from api.enums import Channel
from api.events import EventBus
from api.logs import bind_conversation
from api.metrics.metrics import Metrics
from api.outbox import flows
from api.outbox import service as outbox
from api.outbox.flows import Delivery
from api.settings import Settings

log = logging.getLogger(__name__)

PUSH_VALUES = frozenset(c.value for c in outbox.PUSH_CHANNELS)


@dataclass(frozen=True)
class Sent:
    mid: str | None = None  # the channel's id of the (first part of the) message
    parts_sent: int = 0


@dataclass(frozen=True)
class Retry:
    """A temporary failure: try again later."""

    error: str
    code: int | None = None
    subcode: int | None = None
    parts_sent: int = 0
    mid: str | None = None


@dataclass(frozen=True)
class Failed:
    """Refused for good: retrying cannot help."""

    error: str
    code: int | None = None
    subcode: int | None = None


@dataclass(frozen=True)
class Emitted:
    """Web chat: emitted to connected sockets; the proof comes later (:meth:`prove`)."""

    hold_s: float


@dataclass(frozen=True)
class NoSocket:
    """Web chat: no socket of the session here; the row waits for one."""


Outcome = Sent | Retry | Failed | Emitted | NoSocket


class Sender(Protocol):
    async def send(self, delivery: Delivery) -> Outcome:
        """Hand one message to the channel."""

    def local_recipients(self) -> frozenset[str] | None:
        """Recipients this process can reach (web chat: sessions with a socket here); None:
        any."""


class OutboxWorker:
    def __init__(self, *, db: Database, settings: Settings, metrics: Metrics | None = None,
                 bus: EventBus | None = None) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.bus = bus
        self.senders: dict[Channel, Sender] = {}
        self._wake = asyncio.Event()
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        # A round's lease, and per conversation the rows it leased until they are handled: a
        # caller delivering a conversation inline waits for those too (see deliver_conversation).
        self._round_lease = asyncio.Lock()
        self._in_round: dict[int, asyncio.Event] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._spawn(self._loop())
        if self.bus is not None:
            # Replies stored by another replica: this one may hold the fan's socket.
            self._spawn(self._listen(self.bus.subscribe(types={"message.created"})))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def wake(self) -> None:
        """Start a round now (something may be due)."""
        self._wake.set()

    async def _listen(self, subscription) -> None:
        try:
            async for event in subscription:
                # A pull channel's reply (REST) has no outbox row: no round for it. An event
                # without a channel (an older replica's) wakes one.
                channel = event.data.get("channel")
                if event.data.get("kind") == "outgoing" and channel in (None, *PUSH_VALUES):
                    self.wake()
        finally:
            subscription.close()

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.run_round()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the next round retries
                log.exception("outbox round failed")

    # -- delivering -----------------------------------------------------------------------------
    def _recipients(self) -> frozenset[str] | None:
        sender = self.senders.get(Channel.webchat)
        return sender.local_recipients() if sender is not None else frozenset()

    async def run_round(self) -> int:
        """Lease the due heads of every conversation's queue and deliver them, conversations in
        parallel. Returns how many rows were leased."""
        async with self._round_lease:
            leased = await self.db.run(flows.lease_due, lease_s=self.settings.outbox_lease_s,
                                       limit=self.settings.outbox_batch,
                                       webchat_recipients=self._recipients())
            for d in leased:
                self._in_round[d.conversation_id] = asyncio.Event()
        if leased:
            await asyncio.gather(*(self._round_conversation(d) for d in leased))
        return len(leased)

    async def _round_conversation(self, first: Delivery) -> None:
        try:
            await self._conversation(first.conversation_id, first=first)
        finally:
            done = self._in_round.pop(first.conversation_id, None)
            if done is not None:
                done.set()

    async def deliver_conversation(self, conversation_id: int) -> None:
        """Deliver a conversation's due rows now, in order (the relay and staff replies call
        this right after storing a reply, so delivery stays immediate); returns once they are
        handled, also when a round of this process leased them first."""
        await self._conversation(conversation_id)
        async with self._round_lease:
            in_round = self._in_round.get(conversation_id)
        if in_round is not None:
            try:  # bounded: a send never holds its row longer than its lease
                await asyncio.wait_for(in_round.wait(), self.settings.outbox_lease_s)
            except TimeoutError:
                log.warning("conversation %s: delivery still under way", conversation_id)

    async def _conversation(self, conversation_id: int, first: Delivery | None = None) -> None:
        bind_conversation(conversation_id)
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        try:
            async with lock:
                current = first
                while True:
                    if current is None:
                        rows = await self.db.run(flows.lease_due,
                                                 lease_s=self.settings.outbox_lease_s, limit=1,
                                                 conversation_id=conversation_id)
                        if not rows:
                            return
                        current = rows[0]
                    if not await self._deliver(current):
                        return
                    current = None
        finally:
            if not lock.locked() and not lock._waiters:  # noqa: SLF001 - tidy idle locks
                self._locks.pop(conversation_id, None)

    async def _deliver(self, d: Delivery) -> bool:
        """Send one row and record the outcome; True when the next row may follow at once."""
        sender = self.senders.get(d.channel)
        if sender is None:
            await self.db.run(flows.release, outbox_id=d.outbox_id)
            return False
        try:
            outcome = await sender.send(d)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected failure: retried like a temporary one
            log.exception("outbox %s: send raised", d.outbox_id)
            outcome = Retry(error=type(exc).__name__, parts_sent=d.parts_sent)
        match outcome:
            case Sent(mid=mid, parts_sent=parts):
                await self.db.run(flows.record_sent, outbox_id=d.outbox_id, mid=mid,
                                  parts_sent=parts)
                self.metrics.delivery(d.channel, "sent")
                return True
            case Emitted(hold_s=hold):
                await self.db.run(flows.record_emitted, outbox_id=d.outbox_id, hold_s=hold)
                self.metrics.delivery(d.channel, "sent")
                return True
            case Failed(error=error, code=code, subcode=subcode):
                await self.db.run(flows.record_failed, outbox_id=d.outbox_id, error=error,
                                  code=code, subcode=subcode)
                self.metrics.delivery(d.channel, "dead")
                return True  # a final refusal: the next message may still go
            case Retry(error=error, code=code, subcode=subcode, parts_sent=parts, mid=mid):
                delay = outbox.retry_delay(d.attempts + 1, base_s=self.settings.outbox_retry_base_s,
                                           max_s=self.settings.outbox_retry_max_s)
                dead = await self.db.run(flows.record_retry, outbox_id=d.outbox_id, error=error,
                                         code=code, subcode=subcode, parts_sent=parts, mid=mid,
                                         delay_s=delay,
                                         max_attempts=self.settings.outbox_max_attempts)
                self.metrics.delivery(d.channel, "dead" if dead else "retried")
                return dead  # later messages wait behind a retry, in order
            case NoSocket():
                await self.db.run(flows.release, outbox_id=d.outbox_id)
                return False
        raise AssertionError(f"unknown outcome {outcome!r}")

    async def prove(self, conversation_id: int, *, delivered: list[int],
                    released: list[int]) -> None:
        """Web chat's proof (or its absence) for emitted rows, recorded under the
        conversation's lock so it never overtakes the emit's own record."""
        if not delivered and not released:
            return
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        try:
            async with lock:
                await self.db.run(flows.record_proof, delivered=delivered, released=released)
        finally:
            if not lock.locked() and not lock._waiters:  # noqa: SLF001 - tidy idle locks
                self._locks.pop(conversation_id, None)
