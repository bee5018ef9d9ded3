"""The handoff side of one switchboard process: the loaded triage, the clock, the timer loop,
deliveries of what routing decided and the outgoing alert webhook."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from api.clock import Clock
from api.cluster.replica import Replica
from api.cluster.service import TIMERS_LEASE
from api.db import Database
from api.handoff.service import Desk
from api.logs import adopt_library_loggers
from api.ratelimit.alerts import UrgentAlerts
from api.routing.policy import TopicRule
from api.settings import Settings
from api.snapshots import ConversationRef, HistoryTurn, OutgoingRef

if TYPE_CHECKING:  # loading api.triage pulls in spaCy: only at startup, never at import
    from api.relay.relay import Relay
    from api.relay.schemas import BotTurn
    from api.triage import Assessment, Triage
    from api.triage.language import LanguageGuesser
    from api.triage.semantic import SemanticVerdict
    from api.triage.worker import MeaningWorker

log = logging.getLogger(__name__)

class HandoffManager:
    def __init__(self, *, db: Database, settings: Settings, clock: Clock,
                 topics: dict[str, TopicRule], http: httpx.AsyncClient, relay: Relay,
                 triage: Triage | None = None, alerts: UrgentAlerts | None = None,
                 replica: Replica | None = None) -> None:
        self.db = db
        # The timers run on the replica holding their lease (None: this process alone).
        self.replica = replica
        self.settings = settings
        self.clock = clock
        self.topics = topics
        self.http = http
        self.relay = relay
        self.triage: Triage | None = triage
        self.triage_error: str | None = None
        self._ready: asyncio.Event | None = None  # created on the running loop
        # One triage call at a time (CPU-bound; spaCy objects). Waiting for it happens in the
        # event loop, not in a worker thread: a flood of messages queued on a lock would hold
        # every thread of the pool the database calls need (created on first use: a limiter
        # belongs to the running loop).
        self._triage_slot: anyio.CapacityLimiter | None = None
        # The semantic layer in its own process (TRIAGE_SEMANTIC_PROCESS), once it is up.
        self._meaning_worker: MeaningWorker | None = None
        self._tasks: set[asyncio.Task] = set()
        self._timer_task: asyncio.Task | None = None
        self.alerts_sent = 0
        self.alerts = alerts  # urgent alerts grouped per client address (floods)
        relay.handoff = self

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, *, timers: bool = True) -> None:
        self._ready = asyncio.Event()
        if self.triage is not None:
            self._ready.set()
            self._spawn(self._start_meaning_worker())
        else:
            self._spawn(self._load_triage())
        if timers:
            if self.replica is not None:
                self.replica.want(TIMERS_LEASE)
            self._timer_task = asyncio.create_task(self._timer_loop())

    async def stop(self) -> None:
        """Stop the timers; let in-flight work (an urgent alert being posted) finish first,
        within the alert timeout, rather than drop it."""
        if self._timer_task:
            self._timer_task.cancel()
        if self._meaning_worker is not None:
            self._meaning_worker.close()
        if self.alerts is not None:
            self.alerts.close()  # held flood summaries go out before shutdown
        pending = list(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.settings.alert_timeout_s + 1)
            for task in late:
                task.cancel()
        tasks = pending + ([self._timer_task] if self._timer_task else [])
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load_triage(self) -> None:
        from api.triage import Triage

        adopt_library_loggers()  # spaCy, imported with triage, brought a handler of its own
        try:
            self.triage = await anyio.to_thread.run_sync(
                lambda: Triage.load(self.settings.triage_model_dir,
                                    staff_yml=self.settings.staff_file)
            )
            log.info("triage loaded from %s", self.settings.triage_model_dir)
            self._spawn(self._start_meaning_worker())
        except Exception as exc:  # /healthz reports it; fan messages still reach the bot
            self.triage_error = f"{type(exc).__name__}: {exc}"[:300]
            log.error("triage could not be loaded: %s", self.triage_error)
        finally:
            self._ready.set()

    async def _start_meaning_worker(self) -> None:
        semantic = self.triage.semantic if self.triage is not None else None
        if not self.settings.triage_semantic_process or semantic is None or not semantic.model_dir:
            return
        from api.triage.worker import MeaningWorker

        worker = MeaningWorker(semantic.model_dir)
        await worker.start()
        if worker.ready:
            self._meaning_worker = worker

    @property
    def meaning_in_own_process(self) -> bool:
        """The semantic layer is read by its worker process (not a thread of this one)."""
        return self._meaning_worker is not None and self._meaning_worker.ready

    @property
    def ready(self) -> bool:
        return self.triage is not None and self.triage.ready

    def language_guesser(self) -> LanguageGuesser | None:
        """Triage's lingua detector (one instance per process), once triage is loaded: the
        switchboard decides each fan message's language with it too."""
        return self.triage.languages if self.triage is not None else None

    def health(self) -> dict[str, Any]:
        if self.triage is None:
            return {"ok": False, "error": self.triage_error or "loading"}
        info = self.triage.health()
        return {"ok": bool(info.get("ready")), "model_stamp": info.get("model_stamp"),
                "model_data": info.get("model_data")}

    async def wait_ready(self, timeout: float = 120.0) -> bool:
        if self._ready is None:
            return self.triage is not None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return self.triage is not None

    def desk(self) -> Desk:
        return Desk(self.topics, self.settings.staff_timezone, self.clock.now())

    # -- triage ---------------------------------------------------------------------------------
    async def assess(self, text: str, history: Sequence[HistoryTurn], *,
                     meaning: bool = True) -> Assessment | None:
        """Triage before the bot (in a worker thread); None when triage is unavailable.
        ``meaning=False``: without the semantic layer (the relay runs :meth:`meaning` while
        Rasa answers, so the fan never waits for it)."""
        if not await self.wait_ready():
            log.warning("triage unavailable: message goes to the bot untriaged")
            return None
        from api.triage import FanTurn

        turns = [FanTurn(h.text, h.parse, h.negative) for h in history]

        if self._triage_slot is None:
            self._triage_slot = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(
            lambda: self.triage.before_bot(text, turns, meaning=meaning),
            limiter=self._triage_slot)

    async def meaning(self, text: str) -> SemanticVerdict | None:
        """The semantic layer's verdict: in its worker process when that is up, else in a
        worker thread (it needs no lock: numpy only)."""
        if self.triage is None:
            return None
        worker = self._meaning_worker
        if worker is not None and worker.ready:
            try:
                return await worker.classify(text)
            except BrokenProcessPool:
                self._meaning_worker = None  # the worker logged it; read in-process from now on
        return await anyio.to_thread.run_sync(self.triage.meaning, text)

    def decide(self, assessment: Assessment, turn: BotTurn | None = None) -> dict[str, Any]:
        """The after-bot decision as stored JSON (pure and fast: runs on the event loop)."""
        if turn is None:
            decision = self.triage.after_bot(assessment)
        else:
            parse = turn.parse.model_dump(mode="json") if turn.parse is not None else None
            decision = self.triage.after_bot(
                assessment, parse=parse, history_parses=None,
                bot_custom_items=[m.custom for m in turn.messages if m.custom],
            )
        # Answers to the bot's forms never count as "not understood": the parse says which form
        # was asking (bot/channels.py), and triage leaves those turns out of the fallback streak.
        return decision.as_dict()

    async def on_held(self, conversation: ConversationRef, message_id: int) -> None:
        """Triage a message held for a person: its score is kept, and a safety matter in a
        thread that was not urgent re-routes it as urgent (the fan is told in the same reply)."""
        from api import flows

        text, history = await self.db.run(flows.held_message, message_id=message_id,
                                          history=self.settings.triage_history)
        assessment = await self.assess(text, history)
        if assessment is None:
            return
        decision = self.decide(assessment) if assessment.skip_bot else None
        stored = await self.db.run(flows.escalate_held, message_id=message_id,
                                   negative=assessment.negative, decision=decision,
                                   desk=self.desk())
        await self.deliver(conversation, stored.replies)
        self.alert(stored.alert, conversation.id)

    # -- deliveries and alerts ----------------------------------------------------------------
    async def deliver(self, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        if not messages:
            return
        from api.relay.relay import PullDeliverer

        deliverer = self.relay.deliverers.get(conversation.channel, PullDeliverer())
        await deliverer.deliver(conversation=conversation, messages=messages)

    def alert(self, text: str | None, conversation_id: int | None = None) -> None:
        """Post an urgent alert to ALERT_WEBHOOK_URL (Slack-compatible ``{"text"}``), later;
        alerts of one client address's flood are grouped (api/ratelimit/alerts.py)."""
        if not text:
            return
        if self.alerts is not None:
            self.alerts.offer(text, conversation_id, self._send_alert)
        else:
            self._send_alert(text)

    def _send_alert(self, text: str) -> None:
        if self.settings.alert_webhook_url:
            self._spawn(self._post_alert(text))

    async def _post_alert(self, text: str) -> None:
        try:
            resp = await self.http.post(self.settings.alert_webhook_url, json={"text": text},
                                        timeout=self.settings.alert_timeout_s)
            if resp.status_code >= 300:
                log.error("alert webhook answered %s", resp.status_code)
            else:
                self.alerts_sent += 1
        except httpx.HTTPError as exc:
            log.error("alert webhook failed: %s", type(exc).__name__)

    async def apply(self, outcome) -> None:
        """Deliver the fan notices of a handoff flow's outcome and send its alerts."""
        for conv, replies in outcome.notices:
            await self.deliver(conv, replies)
        for text in outcome.alerts:
            self.alert(text)

    # -- timers ---------------------------------------------------------------------------------
    async def _timer_loop(self) -> None:
        """Rounds of the timers, on one replica of the cluster at a time: the lease's holder
        (another replica takes the lease over once the holder's heartbeat is stale)."""
        while True:
            try:
                if self.replica is None or self.replica.holds(TIMERS_LEASE):
                    await self.check_timers()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handoff timer round failed")
            await asyncio.sleep(self.settings.timer_poll_s)

    async def check_timers(self):
        """One round of the first-response timers (the loop calls it; tests call it)."""
        from api.handoff import flows

        outcome = await self.db.run(flows.check_timers, desk=self.desk())
        await self.apply(outcome)
        return outcome
