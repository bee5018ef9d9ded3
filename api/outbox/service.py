"""The outbox: sends waiting for a channel, with attempts and errors (no commits here)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.enums import Channel, OutboxStatus
from api.outbox.models import OutboxItem


def enqueue(
    *, session: Session, message_id: int, channel: Channel, recipient: str, body: dict[str, Any]
) -> OutboxItem:
    """Add a send for ``message_id``."""
    item = OutboxItem(message_id=message_id, channel=channel, recipient=recipient, body=body)
    session.add(item)
    session.flush()
    return item


def due(*, session: Session, now: dt.datetime, limit: int = 100) -> list[OutboxItem]:
    """Pending sends whose time has come, oldest first."""
    return list(
        session.scalars(
            select(OutboxItem)
            .where(
                OutboxItem.status == OutboxStatus.pending,
                (OutboxItem.next_attempt_at.is_(None)) | (OutboxItem.next_attempt_at <= now),
            )
            .order_by(OutboxItem.id)
            .limit(limit)
        )
    )
