"""Lost-property reports (no commits here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.conversations.models import Conversation
from api.events import Event, publish_on_commit
from api.lost_property.models import LostPropertyReport


def _clip(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


def create_from_bot(
    *, session: Session, conversation: Conversation, report: dict[str, Any],
    message_id: int | None,
) -> LostPropertyReport:
    """Store the bot's ``lost_property`` custom message as a report."""
    row = LostPropertyReport(
        conversation_id=conversation.id,
        fan_id=conversation.fan_id,
        message_id=message_id,
        item=_clip(report.get("item"), 500),
        lost_when=_clip(report.get("when"), 200),
        description=_clip(report.get("description"), 5000),
        contact=_clip(report.get("contact"), 300),
    )
    session.add(row)
    session.flush()
    publish_on_commit(
        session, Event("lost_property.reported", conversation.id, {"report_id": row.id})
    )
    return row
