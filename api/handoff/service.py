"""Handoff rules: apply a triage decision, route to a named person or queue, tell the fan, alert
supervisors (no commits here; the flows in :mod:`api.handoff.flows` commit once)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from api.conversations import service as conversations
from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, Priority, SenderType
from api.events import Event, publish_on_commit
from api.handoff import texts
from api.routing import policy
from api.routing import service as routing
from api.routing.policy import TopicRule
from api.staff.models import Staff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Desk:
    """What handoff needs besides the database: staff.yml's topics, the team's zone, the time."""

    topics: Mapping[str, TopicRule]
    tz: str
    now: dt.datetime


@dataclass
class Routed:
    """The outcome of routing one conversation."""

    status: ConversationStatus
    assignee_id: int | None
    reply: Message | None = None
    alert: str | None = None  # text for the outgoing alert webhook (no fan content)
    handoff: dict[str, Any] = field(default_factory=dict)


def public_object(conversation: Conversation, staff: Staff | None) -> dict[str, Any]:
    """The machine-readable handoff object of the public contract."""
    return {
        "conversation_id": conversation.id,
        "status": conversation.status.value,
        "assignee": (
            {"name": staff.name, "handle": staff.handle, "title": staff.title} if staff else None
        ),
        "topic": conversation.topic,
        "priority": conversation.priority.value if conversation.priority else None,
        "reasons": list(conversation.reasons or []),
    }


def apply_decision(*, session: Session, conversation: Conversation,
                   decision: Mapping[str, Any], message_id: int | None) -> None:
    """Store a handoff decision (topic, priority, reasons, language, triggers) on the thread."""
    conversation.topic = decision.get("topic") or "general"
    conversation.priority = Priority(decision.get("priority") or "normal")
    conversation.reasons = list(decision.get("reasons") or [])
    conversation.triage = {**dict(decision), "message_id": message_id}
    if decision.get("language"):
        conversation.language = str(decision["language"])[:8]
    triggers = ", ".join(decision.get("triggers") or []) or "handoff"
    conversations.add_activity(
        session=session, conversation=conversation,
        text=f"triage: a person is needed ({triggers}; {conversation.topic}, "
             f"{conversation.priority.value}): " + "; ".join(conversation.reasons),
        data={"triage": conversation.triage},
    )


def route(
    *, session: Session, conversation: Conversation, desk: Desk, actor: str, reason: str,
    exclude: frozenset[int] = frozenset(), reply_to_id: int | None = None,
    tell_fan: bool = True, queue_if_nobody: bool = True, keep_assignee: bool = False,
) -> Routed:
    """Assign the thread to the person the policy picks, or queue it; tell the fan which.

    With ``queue_if_nobody=False`` nothing changes when nobody is available (a queued thread
    retried when someone comes online, a late first response with nobody else free).
    """
    candidates = routing.candidates(session=session)
    need = routing.need_for(session=session, conversation=conversation, exclude=exclude)
    pick = policy.choose(need, candidates, desk.topics, now=desk.now, tz=desk.tz)
    minutes = policy.first_response_minutes(need.topic, desk.topics)
    was_assigned = conversation.status == ConversationStatus.assigned
    if keep_assignee and was_assigned and pick.person is not None \
            and pick.person.id == conversation.assignee_id:
        # The person already there is the one the policy wants: restart their timer only.
        if conversation.first_response_at is None:
            conversation.first_response_due_at = desk.now + dt.timedelta(minutes=minutes)
        staff = session.get(Staff, conversation.assignee_id)
        return Routed(ConversationStatus.assigned, staff.id,
                      handoff=public_object(conversation, staff))
    if pick.person is not None:
        staff = session.get(Staff, pick.person.id)
        routing.assign(session=session, conversation=conversation, staff=staff, now=desk.now,
                       minutes=minutes, actor=actor, reason=reason)
        text = texts.assigned(name=staff.name, title=staff.title, minutes=minutes,
                              language=conversation.language, instead=was_assigned)
        routed = Routed(ConversationStatus.assigned, staff.id)
    else:
        if not queue_if_nobody:
            return Routed(conversation.status, conversation.assignee_id)
        if conversation.status != ConversationStatus.queued:
            routing.queue(session=session, conversation=conversation, now=desk.now,
                          minutes=minutes, actor=actor, reason=reason)
        expected = pick.expected_person
        text = texts.queued(
            expected_at=pick.expected_at, expected_name=expected.name if expected else None,
            expected_title=expected.title if expected else None, now=desk.now,
            language=conversation.language, urgent=need.priority == Priority.urgent, tz=desk.tz,
        )
        staff = None
        routed = Routed(ConversationStatus.queued, None)
        if need.priority == Priority.urgent:
            routed.alert = alert_supervisors(session=session, conversation=conversation,
                                             pick=pick, desk=desk)
    routed.handoff = public_object(conversation, staff)
    text = texts.with_sympathy(text, conversation.language,
                               bool((conversation.triage or {}).get("care")) and not was_assigned)
    if tell_fan:
        routed.reply = conversations.add_reply(
            session=session, conversation=conversation, sender_type=SenderType.system,
            text=text, payload={"handoff": routed.handoff}, reply_to_id=reply_to_id,
        )
    return routed


def alert_supervisors(*, session: Session, conversation: Conversation, pick: policy.Pick,
                      desk: Desk) -> str:
    """An urgent thread nobody suitable can take: an event for every online supervisor."""
    supervisors = routing.online_supervisors(session=session)
    expected = ""
    if pick.expected_at is not None and pick.expected_person is not None:
        expected = (f" Next suitable shift: {texts.when(pick.expected_at, desk.now, 'en', desk.tz)}"
                    f" ({pick.expected_person.name}).")
    text = (f"URGENT: conversation {conversation.id} ({conversation.topic}) needs a person and "
            f"nobody suitable is online.{expected}")
    for s in supervisors:
        publish_on_commit(session, Event("alert.urgent_unassigned", conversation.id,
                                         {"staff_id": s.id, "topic": conversation.topic,
                                          "priority": "urgent"}))
    conversation.alerted_at = desk.now
    conversations.add_activity(
        session=session, conversation=conversation,
        text=f"urgent and nobody suitable online: {len(supervisors)} supervisor(s) alerted",
        data={"alert": {"supervisors": [s.id for s in supervisors]}},
    )
    log.warning("conversation %s: urgent, nobody suitable online; %s supervisors alerted",
                conversation.id, len(supervisors))
    return text
