"""Figures read from the database for the metrics (cheap aggregates; no commits here)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, OutboxStatus, SenderType
from api.outbox.models import OutboxItem
from api.training.models import JobStatus, TrainingJob


@dataclass(frozen=True)
class QueueFigures:
    length: int
    oldest_wait_s: float  # 0 when nobody waits


def queue_figures(*, session: Session, now: dt.datetime) -> QueueFigures:
    """Conversations waiting for a person, and the longest wait since the fan's last message."""
    count, oldest = session.execute(
        select(func.count(Conversation.id),
               func.min(func.coalesce(Conversation.last_fan_message_at,
                                      Conversation.created_at)))
        .where(Conversation.status == ConversationStatus.queued)
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return QueueFigures(int(count), (now - oldest).total_seconds() if oldest else 0.0)


def outbox_rows(*, session: Session) -> dict[str, int]:
    """Outbox rows by status, every status present (0 when none)."""
    counts = dict(session.execute(
        select(OutboxItem.status, func.count(OutboxItem.id)).group_by(OutboxItem.status)
    ).all())
    return {status.value: int(counts.get(status, 0)) for status in OutboxStatus}


def training_jobs(*, session: Session) -> dict[str, int]:
    """Training jobs by status, every status present (0 when none)."""
    counts = dict(session.execute(
        select(TrainingJob.status, func.count(TrainingJob.id)).group_by(TrainingJob.status)
    ).all())
    return {status.value: int(counts.get(status, 0)) for status in JobStatus}


@dataclass(frozen=True)
class FirstReply:
    topic: str | None
    seconds: float


def first_human_reply(*, session: Session, conversation_id: int, reply_id: int,
                      now: dt.datetime) -> FirstReply | None:
    """The wait before a person's first reply since the handoff: from the fan message that
    triage handed off to this reply. None when this is not the first person's reply since that
    message (a transfer restarts the inbox timer, not the fan's wait) or the thread was never
    handed off by triage (a person took it from the bot)."""
    conversation = session.get(Conversation, conversation_id)
    handoff_id = (conversation.triage or {}).get("message_id") if conversation else None
    if not isinstance(handoff_id, int):
        return None
    asked_at = session.scalar(select(Message.created_at).where(Message.id == handoff_id))
    if asked_at is None:
        return None
    earlier = session.scalar(
        select(Message.id).where(Message.conversation_id == conversation_id,
                                 Message.sender_type == SenderType.staff,
                                 Message.id > handoff_id, Message.id != reply_id).limit(1))
    if earlier is not None:
        return None
    if asked_at.tzinfo is None:
        asked_at = asked_at.replace(tzinfo=dt.UTC)
    return FirstReply(conversation.topic, (now - asked_at).total_seconds())
