"""The outbox: delivery rows, their leases and the retry policy (no commits here).

A row is written in the same transaction as its outgoing message (:func:`enqueue`, called by
``conversations.add_reply``), so a crash can lose neither. Workers lease rows with one
conditional statement (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), only the head of each
conversation's queue, so replies leave in order and no row is sent by two workers at once.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from api.enums import Channel, OutboxStatus
from api.outbox.models import OutboxItem

# Channels whose replies the switchboard pushes; REST clients pull theirs (flows.take_undelivered).
PUSH_CHANNELS = frozenset({Channel.messenger, Channel.webchat})


def enqueue(*, session: Session, message_id: int, conversation_id: int, channel: Channel,
            recipient: str) -> OutboxItem:
    """The delivery row of an outgoing message, in the caller's transaction."""
    item = OutboxItem(message_id=message_id, conversation_id=conversation_id, channel=channel,
                      recipient=recipient, body={})
    session.add(item)
    return item


def _waiting(row, now: dt.datetime):
    """Not settled: pending, or emitted to a web chat socket whose proof never came (a dead
    replica's; its lease has expired)."""
    return or_(row.status == OutboxStatus.pending,
               and_(row.status == OutboxStatus.emitted, row.lease_until <= now))


def lease(
    *, session: Session, now: dt.datetime, until: dt.datetime, limit: int,
    conversation_id: int | None = None, webchat_recipients: Collection[str] | None = None,
) -> list[int]:
    """Lease due rows until ``until``: each the oldest unsettled row of its conversation, free
    (never leased, or its lease expired) and due. ``webchat_recipients``: web chat rows only for
    these sessions (those with a socket on this process); None: any. Returns the leased ids."""
    earlier = aliased(OutboxItem)
    candidates = (
        select(OutboxItem.id)
        .where(
            _waiting(OutboxItem, now),
            or_(OutboxItem.next_attempt_at.is_(None), OutboxItem.next_attempt_at <= now),
            or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until <= now),
            ~exists().where(earlier.conversation_id == OutboxItem.conversation_id,
                            earlier.id < OutboxItem.id, _waiting(earlier, now)),
        )
        .order_by(OutboxItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxItem)
    )
    if conversation_id is not None:
        candidates = candidates.where(OutboxItem.conversation_id == conversation_id)
    if webchat_recipients is not None:
        candidates = candidates.where(or_(
            OutboxItem.channel != Channel.webchat,
            OutboxItem.recipient.in_(list(webchat_recipients)),
        ))
    rows = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id.in_(candidates.scalar_subquery()),
               # re-checked on the locked row: a lease taken meanwhile is not taken twice
               or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until <= now))
        .values(lease_until=until)
        .returning(OutboxItem.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    return sorted(rows)


def retry_delay(attempts: int, *, base_s: float, max_s: float,
                rng: random.Random | None = None) -> float:
    """Seconds until retry number ``attempts`` (1 = the first): exponential back-off capped at
    ``max_s``, with "equal jitter" (half fixed, half random) so a burst of failures spreads."""
    delay = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def due_at(now: dt.datetime, delay_s: float) -> dt.datetime:
    return now + dt.timedelta(seconds=delay_s)
