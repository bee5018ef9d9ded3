"""How long a fan has been waiting for a person: one definition, in SQL, for the inbox, the
handoff timers and the reports.

*Waiting since* is the time of the fan's first message that no person has answered yet, counted
from the message that handed the thread to people (the last move from the bot, or from resolved,
to queued/assigned): fan messages the bot answered before the handoff do not count, and a staff
reply ends the wait (the fan's next message starts a new one). System notices ("you are in the
queue", "passing you to Noor") are not answers. Only threads with people (queued, assigned) wait;
the others give NULL.

Everything here is a correlated SQL expression over ``messages`` (indexed by conversation), so it
works in a list query, an ORDER BY or an aggregate without loading transcripts into Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, aliased

from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, MessageKind, SenderType
from api.routing import policy
from api.routing.policy import TopicRule

# Transitions that give the thread to people from outside (state.py): the wait starts here.
_INTO_PEOPLE_FROM = ("bot", "resolved")


def handoff_move_id(conversation=Conversation) -> ColumnElement:
    """The id of the last activity that moved the thread from the bot (or resolved) to people."""
    m = aliased(Message)
    return (select(func.max(m.id))
            .where(m.conversation_id == conversation.id, m.kind == MessageKind.activity,
                   m.payload[("transition", "from")].as_string().in_(_INTO_PEOPLE_FROM))
            .correlate(conversation).scalar_subquery())


def handoff_message_id(conversation=Conversation) -> ColumnElement:
    """The fan message that handed the thread to people: the fan's last message before that
    move (the move's own id when the fan had written nothing)."""
    m = aliased(Message)
    move = handoff_move_id(conversation)
    return func.coalesce(
        select(func.max(m.id))
        .where(m.conversation_id == conversation.id, m.kind == MessageKind.incoming,
               m.sender_type == SenderType.fan, m.id < move)
        .correlate(conversation).scalar_subquery(),
        move)


def handoff_started_at(conversation=Conversation) -> ColumnElement:
    """When the fan started waiting for a person in the current (or last) handoff: the time of
    the message that handed the thread over. The reports' first-reply time is
    ``first_response_at - handoff_started_at``. NULL for a thread never handed to people."""
    m = aliased(Message)
    return (select(m.created_at).where(m.id == handoff_message_id(conversation))
            .correlate(conversation).scalar_subquery())


def waiting_since_expr(conversation=Conversation) -> ColumnElement:
    """The fan's first message, since the handoff, that no person answered (NULL when the
    thread is not with people, or the last word is a person's)."""
    fan = aliased(Message)
    staff = aliased(Message)
    last_staff_reply = (select(func.max(staff.id))
                        .where(staff.conversation_id == conversation.id,
                               staff.kind == MessageKind.outgoing,
                               staff.sender_type == SenderType.staff)
                        .correlate(conversation).scalar_subquery())
    first_unanswered = (
        select(func.min(fan.created_at))
        .where(fan.conversation_id == conversation.id, fan.kind == MessageKind.incoming,
               fan.sender_type == SenderType.fan,
               fan.id >= handoff_message_id(conversation),
               fan.id > func.coalesce(last_staff_reply, 0))
        .correlate(conversation).scalar_subquery())
    with_people = conversation.status.in_([ConversationStatus.queued,
                                           ConversationStatus.assigned])
    return case((with_people, first_unanswered), else_=None)


def waiting_since(session: Session, conversation_id: int) -> dt.datetime | None:
    """:func:`waiting_since_expr` of one conversation."""
    value = session.scalar(select(waiting_since_expr()).where(Conversation.id == conversation_id))
    return aware(value)


def aware(value) -> dt.datetime | None:
    # A bare scalar subquery loses the column type: SQLite returns a naive datetime or text.
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def due_at(session: Session, conversation: Conversation, *, minutes: int,
           now: dt.datetime) -> dt.datetime:
    """The first-response due time anchored to when the fan started waiting (``now`` when the
    fan is not waiting on a message): re-queueing never moves it."""
    session.flush()
    since = waiting_since(session, conversation.id) or now
    return since + dt.timedelta(minutes=minutes)


def figures(since: dt.datetime | None, *, topic: str | None, topics: Mapping[str, TopicRule],
            now: dt.datetime) -> dict:
    """What the inbox shows: ``waiting_since``, ``waiting_s`` and ``overdue_by_s`` (seconds past
    the topic's first-response target, 0 inside it; all None when the fan is not waiting)."""
    if since is None:
        return {"waiting_since": None, "waiting_s": None, "overdue_by_s": None}
    target = dt.timedelta(minutes=policy.first_response_minutes(topic or "general", topics))
    waited = max(dt.timedelta(0), now - since)
    return {"waiting_since": since.isoformat(), "waiting_s": int(waited.total_seconds()),
            "overdue_by_s": int(max(dt.timedelta(0), waited - target).total_seconds())}


def with_people_order(conversation=Conversation) -> list[ColumnElement]:
    """ORDER BY for lists of threads with people: urgent first (then high, normal, low), then
    the longest wait, threads nobody waits on last, then id."""
    from api.enums import Priority

    rank = case({Priority.urgent: 0, Priority.high: 1, Priority.normal: 2, Priority.low: 3},
                value=conversation.priority, else_=2)
    since = waiting_since_expr(conversation)
    return [rank, case((since.is_(None), 1), else_=0), since, conversation.id]

