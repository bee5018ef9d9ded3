"""The relay: fan messages to Rasa in order per conversation, in parallel across them.

When Rasa is down, slow or answers garbage, the fan gets one honest holding reply, the message
stays ``pending`` and is retried with back-off. Before re-sending a turn the tracker is checked
for the message's id, since a timed-out turn may still have run: nothing is lost, nothing is
answered twice.

Several replicas share the work: a turn is claimed in the database for one replica
(:func:`api.flows.claim_next_turn`), and a turn whose replica died is taken over by another one's
retry loop once that replica's heartbeat is stale, through the same tracker check. The
per-process lock only saves a replica from racing itself for a claim.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from api import flows
from api.cluster.replica import Replica
from api.db import Database, utcnow
from api.enums import Channel
from api.logs import bind_conversation, bind_request
from api.metrics.metrics import Metrics
from api.relay.client import RasaClient, RasaError
from api.settings import Settings
from api.snapshots import ConversationRef, OutgoingRef, PendingTurn, StoredTurn

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        """Hand outgoing messages to the fan's channel and record the outcome."""

    async def typing(self, *, conversation: ConversationRef) -> None:
        """Show that an answer is coming (where the channel has such a thing)."""


class PullDeliverer:
    """REST: the fan's client collects replies in its response; nothing to push."""

    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        return None

    async def typing(self, *, conversation: ConversationRef) -> None:
        return None


class Relay:
    def __init__(self, *, db: Database, rasa: RasaClient, settings: Settings, replica: Replica,
                 metrics: Metrics | None = None) -> None:
        self.db = db
        self.replica = replica
        self.rasa = rasa
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.deliverers: dict[Channel, Deliverer] = {Channel.rest: PullDeliverer()}
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self.turns = 0
        self.failures = 0
        self.recovered = 0
        self.on_idle: list[Callable[[], Awaitable[None]]] = []
        self.handoff = None  # api.handoff.manager.HandoffManager: triage before and after

    # -- scheduling -------------------------------------------------------------------------
    def kick(self, conversation_id: int, *,
             claimed: tuple[ConversationRef, PendingTurn] | None = None) -> None:
        """Process a conversation's pending messages in the background."""
        task = asyncio.create_task(self.process(conversation_id, claimed=claimed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._retry_loop())

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        tasks = list(self._tasks)
        if self._loop_task:
            tasks.append(self._loop_task)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until background work started so far has finished (tests, shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(list(self._tasks), timeout=0.05)

    async def _retry_loop(self) -> None:
        while True:
            try:
                for cid in await self.db.run(flows.due_conversations,
                                             member=self.replica.member):
                    lock = self._locks.get(cid)
                    if lock is None or not lock.locked():
                        self.kick(cid)
                for hook in self.on_idle:
                    await hook()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the next round retries
                log.exception("relay retry loop round failed")
            await asyncio.sleep(self.settings.relay_poll_s)

    # -- one conversation ---------------------------------------------------------------------
    async def process(self, conversation_id: int, *,
                      claimed: tuple[ConversationRef, PendingTurn] | None = None,
                      collect: bool = False) -> list[OutgoingRef] | None:
        """Run the pending turns of one conversation, oldest first, one at a time.

        ``claimed``: its oldest turn, claimed for this replica when the message was stored
        (:func:`api.flows.claim_in_line`): run first, without claiming it again. ``collect``: a
        pull channel's request waits for that turn; returns the replies it collected in the
        turn's commit (None: it collected nothing, the caller reads them itself)."""
        bind_conversation(conversation_id)
        bind_request()  # a retry in the background has no request: its turn gets its own id
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        collected = None
        try:
            async with lock:
                while True:
                    if claimed is not None:
                        (conv, head), claimed = claimed, None
                        more, collected = await self._turn(conv, head, collect=collect)
                    else:
                        conv, head = await self.db.run(
                            flows.claim_next_turn, conversation_id=conversation_id,
                            member=self.replica.member, history=self.settings.triage_history,
                        )
                        if conv is None or head is None:
                            return collected
                        if head.next_relay_at is not None and head.next_relay_at > utcnow():
                            return collected  # waiting for its retry time; later ones wait
                        more, _ = await self._turn(conv, head)
                    if not more:
                        return collected
        finally:
            if not lock.locked() and not lock._waiters:  # noqa: SLF001 - tidy idle locks
                self._locks.pop(conversation_id, None)

    def _backoff(self, attempts: int) -> float:
        base = self.settings.relay_retry_base_s
        return min(self.settings.relay_retry_max_s, base * (2 ** max(0, attempts - 1)))

    async def _turn(self, conv: ConversationRef, msg: PendingTurn, *,
                    collect: bool = False) -> tuple[bool, list[OutgoingRef] | None]:
        """One bot turn; returns whether another message of the conversation waits, and the
        replies collected for a pull channel's request (``collect``: see :meth:`process`)."""
        deliverer = self.deliverers.get(conv.channel, PullDeliverer())
        metadata = {
            "message_id": msg.uid,
            "channel": conv.channel.value,
            # decided once, when the message was stored (api/conversations/language.py)
            "language": msg.language or conv.language or self.settings.default_language,
        }
        attempts = msg.attempts
        first_attempt = msg.claimed or msg.attempts == 0
        handoff = self.handoff
        assessment = (await handoff.assess(msg.text, msg.history, meaning=False)
                      if handoff else None)
        if assessment is not None and assessment.safety.urgent:
            # A safety pattern fired: the semantic layer confirms it (or reads an idiom) before
            # the bot is skipped. Rare, so the few milliseconds are spent only here.
            assessment = assessment.with_meaning(await handoff.meaning(msg.text))
        if assessment is not None and assessment.skip_bot:
            # Safety: the bot never sees the message; a person is found at once.
            decision = handoff.decide(assessment)
            stored = await self.db.run(
                flows.safety_turn, message_id=msg.id, negative=assessment.negative,
                decision=decision, desk=handoff.desk(),
            )
            self._count_handoff(decision, stored)
            if stored.replies:
                await deliverer.deliver(conversation=conv, messages=stored.replies)
            handoff.alert(stored.alert, conv.id)
            return stored.more_pending, None
        # The semantic layer reads the message while Rasa answers: the fan never waits for it,
        # and the bot's reply is held until it has decided (an emergency drops the reply).
        meaning = (asyncio.create_task(handoff.meaning(msg.text))
                   if assessment is not None and assessment.semantic is None else None)
        started = None
        try:
            turn = None
            if not msg.claimed and attempts > 0:
                turn = await self.rasa.find_turn(sender=conv.rasa_sender_id, message_id=msg.uid)
                if turn is not None:
                    self.recovered += 1
                    log.info("message %s: turn found in the tracker, not re-sent", msg.id)
            if turn is None:
                if not msg.claimed:
                    if not await self.db.run(flows.mark_attempt, message_id=msg.id,
                                             attempts=attempts):
                        log.info("message %s: attempt counted elsewhere, left to it", msg.id)
                        if meaning is not None:
                            meaning.cancel()
                        return False, None
                    attempts += 1
                await deliverer.typing(conversation=conv)
                started = time.perf_counter()
                turn = await self.rasa.turn(
                    sender=conv.rasa_sender_id,
                    text=flows.rasa_text(msg, self.settings.max_message_chars),
                    metadata=metadata,
                )
        except RasaError as exc:
            if meaning is not None:
                meaning.cancel()  # the retry reads the message again
            self.failures += 1
            attempts = max(attempts, 1)
            log.warning("message %s: bot turn failed (%s), attempt %s", msg.id, exc.kind,
                        attempts)
            replies = await self.db.run(
                flows.record_failure,
                message_id=msg.id,
                error=exc.kind,
                retry_in_s=self._backoff(attempts),
                holding=first_attempt,
            )
            self.metrics.rasa_error(exc.kind, holding=bool(replies))
            if replies:
                await deliverer.deliver(conversation=conv, messages=replies)
            return False, None
        self.turns += 1
        self.metrics.bot_turn(None if started is None else time.perf_counter() - started)
        extra = {}
        verdict = await _meaning_or_none(meaning, msg.id)
        if assessment is not None and verdict is not None:
            assessment = assessment.with_meaning(verdict)
        if assessment is not None:
            extra = {"negative": assessment.negative, "decision": handoff.decide(assessment, turn),
                     "desk": handoff.desk()}
        stored = await self.db.run(flows.store_turn, message_id=msg.id, turn=turn,
                                   collect=collect, **extra)
        self._count_handoff(extra.get("decision"), stored)
        if stored.replies:
            await deliverer.deliver(conversation=conv, messages=stored.replies)
        if handoff is not None:
            handoff.alert(stored.alert, conv.id)
        return stored.more_pending, stored.collected

    def _count_handoff(self, decision: dict | None, stored: StoredTurn) -> None:
        """A turn that handed the thread to a person: counted by its first trigger (the
        decisive one; the others are in the thread's triage record) and topic."""
        if stored.handoff is None:
            return
        triggers = (decision or {}).get("triggers") or [None]
        self.metrics.handoff(trigger=triggers[0], topic=stored.handoff.get("topic"))


async def _meaning_or_none(task: asyncio.Task | None, message_id: int):
    """The semantic layer's verdict; a failure of the layer must not lose the bot's answer (the
    patterns, emotion and rules still decide)."""
    if task is None:
        return None
    try:
        return await task
    except Exception:
        log.exception("message %s: semantic layer failed; deciding without it", message_id)
        return None
