"""Routing's writes: candidates from the database, atomic assignment and queueing (no commits).

Assignment goes through ``conversations.service.transition``, a conditional update on the
conversation's ``version``: when two routers (or two staff) race for one conversation, exactly
one update matches and the others raise ``TransitionConflict``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.conversations import service as conversations
from api.conversations import waiting
from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, Priority, StaffRole
from api.events import Event, publish_on_commit
from api.routing.policy import Candidate, Need, TopicRule
from api.staff.models import Staff

log = logging.getLogger(__name__)


def load_topics(*, path: Path) -> dict[str, TopicRule]:
    """The ``topics`` of a staff.yml file."""
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    return {
        name: TopicRule(Priority(spec.get("priority", "normal")),
                        int(spec.get("first_response_minutes", 30)), spec.get("fallback_skill"))
        for name, spec in (doc.get("topics") or {}).items()
    }


def open_counts(*, session: Session) -> dict[int, int]:
    """Assigned conversations per staff id."""
    rows = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.status == ConversationStatus.assigned,
               Conversation.assignee_id.is_not(None))
        .group_by(Conversation.assignee_id)
    )
    return {staff_id: n for staff_id, n in rows}


def candidate(staff: Staff, open_count: int = 0) -> Candidate:
    return Candidate(
        id=staff.id, handle=staff.handle, name=staff.name, title=staff.title,
        skills=frozenset(staff.skills or ()), languages=tuple(staff.languages or ()),
        capacity=staff.capacity, presence=staff.presence, open_count=open_count,
        last_assigned_at=staff.last_assigned_at, shifts=tuple(staff.shifts or ()),
        supervisor=staff.role in (StaffRole.supervisor, StaffRole.admin),
    )


def candidates(*, session: Session) -> list[Candidate]:
    """Every active staff member with their open conversations."""
    counts = open_counts(session=session)
    staff = session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
    return [candidate(s, counts.get(s.id, 0)) for s in staff]


def last_helper(*, session: Session, conversation: Conversation) -> int | None:
    """Who last helped this fan: this thread's last assignee, else that of their latest other."""
    if conversation.last_assignee_id is not None:
        return conversation.last_assignee_id
    return session.scalar(
        select(Conversation.last_assignee_id)
        .where(Conversation.fan_id == conversation.fan_id,
               Conversation.id != conversation.id,
               Conversation.last_assignee_id.is_not(None))
        .order_by(Conversation.id.desc())
        .limit(1)
    )


def need_for(*, session: Session, conversation: Conversation,
             exclude: frozenset[int] = frozenset()) -> Need:
    return Need(
        topic=conversation.topic or "general",
        priority=conversation.priority or Priority.normal,
        language=conversation.language,
        last_helper_id=last_helper(session=session, conversation=conversation),
        exclude=exclude,
    )


def assign(
    *, session: Session, conversation: Conversation, staff: Staff, now: dt.datetime,
    minutes: int, actor: str, reason: str, staff_id: int | None = None,
) -> Message:
    """Give the conversation to ``staff`` (atomically) and start the first-response timer."""
    previous = conversation.assignee_id if conversation.status == ConversationStatus.assigned \
        else None
    activity = conversations.transition(
        session=session, conversation=conversation, to=ConversationStatus.assigned,
        actor=actor, reason=reason, assignee_id=staff.id, staff_id=staff_id,
    )
    conversation.first_response_due_at = now + dt.timedelta(minutes=minutes)
    conversation.first_response_at = None
    staff.last_assigned_at = now
    data = {"staff_id": staff.id, "handle": staff.handle, "topic": conversation.topic,
            "priority": conversation.priority.value if conversation.priority else None,
            "previous_staff_id": previous}
    publish_on_commit(session, Event("conversation.assigned", conversation.id, data))
    if previous is not None and previous != staff.id:
        publish_on_commit(session, Event("conversation.unassigned", conversation.id,
                                         {"staff_id": previous, "to_staff_id": staff.id,
                                          "reason": reason}))
    log.info("conversation %s assigned to staff %s", conversation.id, staff.id)
    return activity


def queue(
    *, session: Session, conversation: Conversation, now: dt.datetime, minutes: int, actor: str,
    reason: str,
) -> Message:
    """Queue the conversation until a suitable person is online."""
    previous = conversation.assignee_id if conversation.status == ConversationStatus.assigned \
        else None
    activity = conversations.transition(
        session=session, conversation=conversation, to=ConversationStatus.queued,
        actor=actor, reason=reason,
    )
    # Due when the fan's wait passes the target: anchored to when they started waiting, so
    # queueing again (the assignee went offline) never moves it forward.
    conversation.first_response_due_at = waiting.due_at(session, conversation, minutes=minutes,
                                                        now=now)
    conversation.first_response_at = None
    publish_on_commit(session, Event("conversation.queued", conversation.id,
                                     {"topic": conversation.topic,
                                      "priority": conversation.priority.value
                                      if conversation.priority else None,
                                      "previous_staff_id": previous}))
    if previous is not None:
        publish_on_commit(session, Event("conversation.unassigned", conversation.id,
                                         {"staff_id": previous, "to_staff_id": None,
                                          "reason": reason}))
    log.info("conversation %s queued", conversation.id)
    return activity


def queued_conversations(*, session: Session) -> list[Conversation]:
    """Queued conversations, most urgent first, then the fan who has waited longest."""
    return list(session.scalars(
        select(Conversation).where(Conversation.status == ConversationStatus.queued)
        .order_by(*waiting.with_people_order())
    ))


def online_supervisors(*, session: Session) -> list[Staff]:
    from api.enums import Presence

    return list(session.scalars(
        select(Staff).where(Staff.active.is_(True), Staff.presence == Presence.online,
                            Staff.role.in_([StaffRole.supervisor, StaffRole.admin]))
        .order_by(Staff.id)
    ))


def topics_priority(topics: Mapping[str, TopicRule], topic: str) -> Priority:
    rule = topics.get(topic)
    return rule.priority if rule else Priority.normal
