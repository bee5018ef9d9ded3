"""Units of work of the delivery worker (each commits once; events go out after commit)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.conversations.models import Message
from api.db import utcnow
from api.enums import Channel, DeliveryStatus, OutboxStatus
from api.events import Event, publish_on_commit
from api.outbox import service as outbox
from api.outbox.models import OutboxItem
from api.snapshots import OutgoingRef, out_ref

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """A leased outbox row and the message it carries."""

    outbox_id: int
    conversation_id: int
    channel: Channel
    recipient: str
    attempts: int  # attempts made before this one
    parts_sent: int
    message: OutgoingRef


def lease_due(
    session: Session, *, lease_s: float, limit: int, conversation_id: int | None = None,
    webchat_recipients: Collection[str] | None = None,
) -> list[Delivery]:
    """Lease the heads of due conversations' queues (see :func:`outbox.lease`)."""
    now = utcnow()
    ids = outbox.lease(session=session, now=now, until=now + dt.timedelta(seconds=lease_s),
                       limit=limit, conversation_id=conversation_id,
                       webchat_recipients=webchat_recipients)
    out = []
    for item in session.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))
                                .order_by(OutboxItem.id)):
        msg = session.get(Message, item.message_id)
        if item.attempts == 0 and msg.delivery_status not in (None, DeliveryStatus.pending):
            # Settled where it was stored (a person's reply from Meta's own inbox, echoed):
            # nothing to send.
            item.status, item.sent_at, item.lease_until = OutboxStatus.sent, now, None
            continue
        out.append(Delivery(item.id, item.conversation_id, item.channel, item.recipient,
                            item.attempts, item.parts_sent, out_ref(msg)))
    session.commit()
    return out


def _item_and_message(session: Session, outbox_id: int) -> tuple[OutboxItem, Message]:
    item = session.get(OutboxItem, outbox_id)
    return item, session.get(Message, item.message_id)


def record_sent(session: Session, *, outbox_id: int, mid: str | None = None,
                parts_sent: int = 0) -> None:
    """The channel took the whole message."""
    item, msg = _item_and_message(session, outbox_id)
    item.attempts += 1
    item.status, item.sent_at, item.lease_until = OutboxStatus.sent, utcnow(), None
    item.parts_sent = parts_sent
    item.error = item.error_code = item.error_subcode = None
    item.channel_message_id = mid
    if msg.delivery_status in (None, DeliveryStatus.pending, DeliveryStatus.failed):
        msg.delivery_status, msg.delivery_error = DeliveryStatus.sent, None
    if mid and msg.channel_message_id is None:
        msg.channel_message_id = mid[:255]
    session.commit()


def record_retry(session: Session, *, outbox_id: int, error: str, code: int | None,
                 subcode: int | None, parts_sent: int, mid: str | None, delay_s: float,
                 max_attempts: int) -> bool:
    """A temporary failure: retried after ``delay_s``, or dead once ``max_attempts`` attempts
    failed. Returns whether the row is dead."""
    item, msg = _item_and_message(session, outbox_id)
    item.attempts += 1
    item.parts_sent = parts_sent
    item.error, item.error_code, item.error_subcode = error[:300], code, subcode
    item.lease_until = None
    if mid and msg.channel_message_id is None:
        msg.channel_message_id = mid[:255]
    if item.attempts >= max_attempts:
        item.status = OutboxStatus.dead
        _undelivered(session, msg, code, subcode,
                     f"not delivered after {item.attempts} attempts: {error}")
        session.commit()
        log.warning("outbox %s (message %s): dead after %s attempts", item.id, msg.id,
                    item.attempts)
        return True
    item.next_attempt_at = outbox.due_at(utcnow(), delay_s)
    session.commit()
    log.info("outbox %s (message %s): attempt %s failed, retry in %.0f s", item.id, msg.id,
             item.attempts, delay_s)
    return False


def record_failed(session: Session, *, outbox_id: int, error: str, code: int | None,
                  subcode: int | None) -> None:
    """The channel refused the message for good (outside the window, person unavailable...)."""
    item, msg = _item_and_message(session, outbox_id)
    item.attempts += 1
    item.status, item.lease_until = OutboxStatus.failed, None
    item.error, item.error_code, item.error_subcode = error[:300], code, subcode
    _undelivered(session, msg, code, subcode, error)
    session.commit()


def _undelivered(session: Session, msg: Message, code: int | None, subcode: int | None,
                 why: str) -> None:
    msg.delivery_status, msg.delivery_error = DeliveryStatus.failed, why[:300]
    publish_on_commit(session, Event("message.delivery_failed", msg.conversation_id,
                                     {"message_id": msg.id, "code": code, "subcode": subcode}))


def record_emitted(session: Session, *, outbox_id: int, hold_s: float) -> None:
    """Web chat: emitted to the session's connected sockets; held (leased) while the proof is
    awaited, then taken over by any worker if this process dies first."""
    item, msg = _item_and_message(session, outbox_id)
    item.attempts += 1
    item.status = OutboxStatus.emitted
    item.lease_until = utcnow() + dt.timedelta(seconds=hold_s)
    if msg.delivery_status in (None, DeliveryStatus.pending):
        msg.delivery_status = DeliveryStatus.sent
    session.commit()


def record_proof(session: Session, *, delivered: list[int], released: list[int]) -> None:
    """Web chat: rows whose socket was still connected at the next ping are delivered; rows
    whose sockets all dropped first wait for the session's next ``session_request``."""
    now = utcnow()
    if delivered:
        session.execute(update(OutboxItem)
                        .where(OutboxItem.id.in_(delivered),
                               OutboxItem.status == OutboxStatus.emitted)
                        .values(status=OutboxStatus.sent, sent_at=now, lease_until=None)
                        .execution_options(synchronize_session=False))
        session.execute(update(Message)
                        .where(Message.id.in_(select(OutboxItem.message_id)
                                              .where(OutboxItem.id.in_(delivered))),
                               Message.delivery_status == DeliveryStatus.sent)
                        .values(delivery_status=DeliveryStatus.delivered)
                        .execution_options(synchronize_session=False))
    if released:
        session.execute(update(OutboxItem)
                        .where(OutboxItem.id.in_(released),
                               OutboxItem.status == OutboxStatus.emitted)
                        .values(status=OutboxStatus.pending, lease_until=None)
                        .execution_options(synchronize_session=False))
        session.execute(update(Message)
                        .where(Message.id.in_(select(OutboxItem.message_id)
                                              .where(OutboxItem.id.in_(released))),
                               Message.delivery_status == DeliveryStatus.sent)
                        .values(delivery_status=DeliveryStatus.pending)
                        .execution_options(synchronize_session=False))
    session.commit()


def release(session: Session, *, outbox_id: int) -> None:
    """Give a leased row back untouched (no socket of its session here any more)."""
    session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id)
                    .values(lease_until=None).execution_options(synchronize_session=False))
    session.commit()
