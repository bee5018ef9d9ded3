"""Intake: the one way a fan's message comes in, whatever the channel.

Every channel (REST, web chat, Messenger) turns its protocol's message into an :class:`Incoming`
and hands it to :meth:`Intake.receive`, which applies the rules in this order:

1. validation: the text (and any other field the channel stores) must be storable and at most
   ``MAX_MESSAGE_CHARS`` long, unless the channel cannot refuse (a Messenger webhook: Meta does
   not resend a refused event, so the channel cleans its strings instead);
2. rate limits (per fan and per client address, as the channel says; api/ratelimit/);
3. store it before anything else happens (:func:`api.flows.receive_fan_message`: de-duplication
   on the channel's message id, the language decision, command detection, the survey answer,
   the text-only notice) — one unit of work;
4. count it, and note its client address for grouping urgent alerts (api/ratelimit/alerts.py);
5. settle it: notices to the fan, the bot's turn (awaited, or in the background when the channel
   must answer first), triage of a message held for the person who owns the thread.

A refused message raises :class:`~api.channels.common.BadMessage` or :class:`RateLimited`:
nothing of it was stored, and the channel tells the fan in its own protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from api import flows
from api.channels.common import BadMessage, check_text
from api.conversations.language import LanguageDecider
from api.db import Database
from api.enums import Channel, RelayStatus
from api.logs import bind_conversation
from api.metrics.metrics import Metrics
from api.ratelimit.address import UNKNOWN
from api.ratelimit.alerts import UrgentAlerts
from api.ratelimit.limiter import RateLimits, Scope, Verdict
from api.relay.relay import PullDeliverer, Relay
from api.snapshots import ConversationRef, OutgoingRef, Received
from api.text import first_unstorable

if TYPE_CHECKING:
    from api.handoff.manager import HandoffManager


@dataclass(frozen=True)
class Incoming:
    """A fan's message as a channel hands it in."""

    channel: Channel
    external_id: str  # the fan on the channel: REST sender, web chat session id, Messenger PSID
    text: str | None  # None: not text (a non-string the channel received, an attachment)
    message_id: str | None = None  # the channel's or client's id: a resend is stored once
    declared_language: str | None = None  # the client's hint; the fan's words decide
    payload: dict[str, Any] | None = None  # channel details kept with it (quick reply, ...)
    pressed: str | None = None  # the channel says a button was pressed: its title
    standby: bool = False  # Messenger's standby channel: recorded, never the bot's
    start_commands: frozenset[str] = frozenset()  # commands taken without being offered
    dedup_window_s: float = 0.0  # no message id: the same text again this soon is dropped
    address: str | None = None  # the client address (rate limits, urgent alert grouping)
    limits: tuple[tuple[Scope, str], ...] = ()  # counted against in order; the first refuses
    strict: bool = True  # refuse unstorable or over-long text (False: the channel cannot refuse)
    stored_fields: Any = None  # the rest of what the channel stores or compares, checked too


class RateLimited(Exception):
    """A limit refused the message: nothing of it was stored."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"rate limited: retry in {verdict.retry_after} s")
        self.verdict = verdict


class Intake:
    """One per process, built by the composition root and handed to the channels."""

    def __init__(self, *, db: Database, relay: Relay, max_message_chars: int,
                 languages: LanguageDecider | None = None, ratelimits: RateLimits | None = None,
                 alerts: UrgentAlerts | None = None, metrics: Metrics | None = None,
                 handoff: HandoffManager | None = None) -> None:
        self.db = db
        self.relay = relay
        self.max_message_chars = max_message_chars
        self.languages = languages
        self.ratelimits = ratelimits
        self.alerts = alerts
        self.metrics = metrics or Metrics()
        self.handoff = handoff

    async def receive(self, incoming: Incoming, *, settle: bool = True, collect: bool = False,
                      admitted: Callable[[], None] | None = None) -> Received:
        """Take a fan's message (the module docstring's steps). ``admitted`` runs once it has
        passed the limits, before it is stored; ``settle=False`` leaves step 5 to the caller
        (:meth:`settle` with ``wait=False``: a webhook that answers before the bot runs).
        ``collect``: a pull channel's request (REST) answers with the replies; those its bot
        turn collected in its own commit are in ``Received.collected``.
        Raises :class:`BadMessage` or :class:`RateLimited` when the message is not taken."""
        if incoming.strict:
            check_text(incoming.text, max_chars=self.max_message_chars)
            if bad := first_unstorable(incoming.stored_fields):
                raise BadMessage(bad)
        if incoming.limits and self.ratelimits is not None:
            verdict = await self.ratelimits.check(incoming.address or UNKNOWN, *incoming.limits)
            if not verdict.allowed:
                raise RateLimited(verdict)
        if admitted is not None:
            admitted()
        received = await self.db.run(self._store, incoming=incoming)
        if received.message_id is not None:
            self.metrics.fan_message(incoming.channel)
        if incoming.address is not None and self.alerts is not None:
            self.alerts.note_origin(received.conversation.id, incoming.address)
        if settle:
            bind_conversation(received.conversation.id)
            await self.settle([received], collect=collect)
        return received

    def _store(self, session: Session, *, incoming: Incoming) -> Received:
        """Step 3, in a worker thread: one unit of work."""
        return flows.receive_fan_message(
            session,
            channel=incoming.channel,
            external_id=incoming.external_id,
            text=incoming.text,
            fan_message_id=incoming.message_id[:255] if incoming.message_id else None,
            declared_language=incoming.declared_language,
            languages=self.languages,
            payload=incoming.payload,
            relay_status=RelayStatus.standby if incoming.standby else None,
            dedup_window_s=incoming.dedup_window_s,
            pressed=incoming.pressed,
            start_commands=incoming.start_commands,
            # the first commit of its bot turn too (api/relay/relay.py runs it next)
            claim_for=self.relay.replica.member,
            history=self.relay.settings.triage_history,
        )

    async def settle(self, batch: Sequence[Received], *, wait: bool = True,
                     collect: bool = False) -> None:
        """What follows storing: notices for the fans (the text-only notice, the survey's
        thanks), then the bot's turns (awaited with ``wait``, else in the background; once per
        conversation; a turn claimed when its message was stored runs first), then triage of
        the messages held for a person. ``collect`` (with ``wait``): see :meth:`receive`."""
        for received in batch:
            if received.replies:
                await self._deliver(received.conversation, received.replies)
        claimed = {r.conversation.id: r for r in batch if r.turn is not None}
        for conversation_id in sorted({r.conversation.id for r in batch if r.relay}):
            first = claimed.get(conversation_id)
            turn = (first.conversation, first.turn) if first is not None else None
            if wait:
                collected = await self.relay.process(conversation_id, claimed=turn,
                                                     collect=collect)
                if first is not None:
                    first.collected = collected
            else:
                self.relay.kick(conversation_id, claimed=turn)
        for received in batch:
            if received.held and self.handoff is not None:
                await self.handoff.on_held(received.conversation, received.message_id)

    async def _deliver(self, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        deliverer = self.relay.deliverers.get(conversation.channel, PullDeliverer())
        await deliverer.deliver(conversation=conversation, messages=messages)
