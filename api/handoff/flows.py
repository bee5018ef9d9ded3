"""Units of work of the handoff: staff replies, handback, resolve, presence, timers.

Each commits once; events go out after the commit; each returns plain snapshots (fan notices to
deliver, alerts to post) for the async side.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.conversations import service as conversations
from api.conversations.models import Conversation
from api.conversations.service import TransitionConflict
from api.csat import service as csat
from api.enums import Channel, ConversationStatus, Presence, Priority, SenderType
from api.events import Event, publish_on_commit
from api.handoff import service as handoff
from api.handoff import texts
from api.handoff.service import Desk
from api.routing import policy
from api.routing import service as routing
from api.snapshots import ConversationRef, OutgoingRef, out_ref
from api.staff.models import Staff

log = logging.getLogger(__name__)

RESPONSE_WINDOW = dt.timedelta(hours=24)
HUMAN_AGENT_WINDOW = dt.timedelta(days=7)


class NotAllowed(Exception):
    """The staff member may not act on this conversation (403)."""


class Conflict(Exception):
    """The conversation is not in a state that allows this (409)."""


@dataclass
class Outcome:
    notices: list[tuple[ConversationRef, list[OutgoingRef]]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)  # conversation ids routing moved

    def add(self, conversation: Conversation, routed: handoff.Routed | None) -> None:
        if routed is None:
            return
        self.changed.append(conversation.id)
        if routed.reply is not None:
            self.notices.append((ConversationRef.of(conversation), [out_ref(routed.reply)]))
        if routed.alert:
            self.alerts.append(routed.alert)


def may_act(staff: Staff, conversation: Conversation) -> bool:
    """Staff act on conversations assigned to them; supervisors (and admins) on any."""
    return staff.role.value in ("supervisor", "admin") or conversation.assignee_id == staff.id


def load_for_staff(session: Session, conversation_id: int,
                   staff_id: int) -> tuple[Conversation, Staff]:
    """The conversation and the staff member acting on it; refuses who may not act on it."""
    conversation = conversations.get(session=session, conversation_id=conversation_id)
    staff = session.get(Staff, staff_id)
    if conversation is None or staff is None:
        raise LookupError("conversation not found")
    if not may_act(staff, conversation):
        raise NotAllowed("this conversation is not assigned to you")
    return conversation, staff


def messenger_window(last_inbound_at: dt.datetime | None, now: dt.datetime) -> dict[str, str]:
    """How a person's reply may go out on Messenger: RESPONSE inside 24 h of the fan's last
    message, MESSAGE_TAG + HUMAN_AGENT up to 7 days; after that nothing may be sent."""
    if last_inbound_at is None:
        raise Conflict("the fan has never written on Messenger: nothing may be sent")
    age = now - last_inbound_at
    if age <= RESPONSE_WINDOW:
        return {"messaging_type": "RESPONSE"}
    if age <= HUMAN_AGENT_WINDOW:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    raise Conflict("Messenger allows no reply more than 7 days after the fan's last message "
                   f"(last message {age.days} days ago)")


@dataclass
class StaffReply:
    conversation: ConversationRef
    message: OutgoingRef
    first_response: bool


def staff_reply(session: Session, *, conversation_id: int, staff_id: int, text: str,
                desk: Desk) -> StaffReply:
    """A staff member's message to the fan, under their name; it stops the first-response
    timer. A supervisor answering a queued thread takes it."""
    conversation, staff = load_for_staff(session, conversation_id, staff_id)
    if conversation.status not in (ConversationStatus.assigned, ConversationStatus.queued):
        raise Conflict(f"the conversation is {conversation.status.value}, not with a person")
    payload: dict[str, Any] = {"sender": {"name": staff.name, "title": staff.title,
                                          "handle": staff.handle}}
    if conversation.channel == Channel.messenger:
        payload["messenger"] = messenger_window(conversation.identity.last_inbound_at, desk.now)
    if conversation.status == ConversationStatus.queued:
        routing.assign(session=session, conversation=conversation, staff=staff, now=desk.now,
                       minutes=policy.first_response_minutes(conversation.topic or "general",
                                                             desk.topics),
                       actor=staff.handle, reason="took the queued thread by answering",
                       staff_id=staff.id)
    reply = conversations.add_reply(
        session=session, conversation=conversation, sender_type=SenderType.staff, text=text,
        payload=payload, staff_id=staff.id,
    )
    first = conversation.first_response_at is None
    if first:
        conversation.first_response_at = desk.now
        conversation.first_response_due_at = None
        publish_on_commit(session, Event("conversation.first_response", conversation.id,
                                         {"staff_id": staff.id}))
    session.commit()
    log.info("staff %s replied on conversation %s", staff.id, conversation.id)
    return StaffReply(ConversationRef.of(conversation), out_ref(reply), first)


def handback(session: Session, *, conversation_id: int, staff_id: int) -> tuple[
        ConversationRef, OutgoingRef]:
    """The person gives the thread back to the bot, which greets the fan back."""
    conversation, staff = load_for_staff(session, conversation_id, staff_id)
    if conversation.status != ConversationStatus.assigned:
        raise Conflict(f"only an assigned conversation can be handed back "
                       f"(this one is {conversation.status.value})")
    conversations.transition(session=session, conversation=conversation,
                             to=ConversationStatus.bot, actor=staff.handle,
                             reason="handed back to the bot", staff_id=staff.id)
    conversation.first_response_due_at = None
    reply = conversations.add_reply(
        session=session, conversation=conversation, sender_type=SenderType.bot,
        text=texts.handback(name=staff.name, language=conversation.language),
    )
    session.commit()
    return ConversationRef.of(conversation), out_ref(reply)


def resolve(session: Session, *, conversation_id: int, staff_id: int,
            survey: csat.SurveyRules | None = None) -> tuple[ConversationRef, list[OutgoingRef]]:
    """Staff close the thread (from queued or assigned); the fan is asked how it went when
    ``survey``'s rules say so (api/csat). Returns the survey message to deliver, if any."""
    conversation, staff = load_for_staff(session, conversation_id, staff_id)
    if conversation.status not in (ConversationStatus.assigned, ConversationStatus.queued):
        raise Conflict(f"the conversation is {conversation.status.value}")
    conversations.transition(session=session, conversation=conversation,
                             to=ConversationStatus.resolved, actor=staff.handle,
                             reason="resolved", staff_id=staff.id)
    conversation.first_response_due_at = None
    question = (csat.ask(session, conversation=conversation, rules=survey)
                if survey is not None else None)
    session.commit()
    return ConversationRef.of(conversation), [out_ref(question)] if question else []


def _each(session: Session, rows: list[Conversation], fn) -> None:
    """Run ``fn`` per conversation in a savepoint; one that changed concurrently is skipped."""
    for conversation in rows:
        try:
            with session.begin_nested():
                fn(conversation)
        except TransitionConflict:
            session.expire(conversation)
            log.info("conversation %s changed concurrently; skipped", conversation.id)


def route_queued(session: Session, *, desk: Desk, outcome: Outcome) -> None:
    """Give queued threads to suitable people who are available now (urgent first)."""
    def route_one(conversation: Conversation) -> None:
        routed = handoff.route(session=session, conversation=conversation, desk=desk,
                               actor="routing", reason="a suitable person is available",
                               queue_if_nobody=False)
        if routed.status == ConversationStatus.assigned:
            outcome.add(conversation, routed)

    _each(session, routing.queued_conversations(session=session), route_one)


def set_presence(session: Session, *, staff_id: int, presence: Presence,
                 desk: Desk) -> Outcome:
    """Presence changes routing at once: going offline hands the person's threads on (or
    queues them); coming online picks up queued threads the person suits."""
    staff = session.get(Staff, staff_id)
    outcome = Outcome()
    previous = staff.presence
    staff.presence = presence
    session.flush()
    publish_on_commit(session, Event("staff.presence_changed", None,
                                     {"staff_id": staff.id, "presence": presence.value,
                                      "previous": previous.value}))
    if presence == Presence.offline:
        mine = list(session.scalars(
            select(Conversation).where(Conversation.status == ConversationStatus.assigned,
                                       Conversation.assignee_id == staff.id)
            .order_by(Conversation.id)
        ))

        def hand_on(conversation: Conversation) -> None:
            outcome.add(conversation, handoff.route(
                session=session, conversation=conversation, desk=desk, actor="routing",
                reason=f"{staff.handle} went offline", exclude=frozenset({staff.id}),
            ))

        _each(session, mine, hand_on)
    if presence == Presence.online:
        route_queued(session, desk=desk, outcome=outcome)
    session.commit()
    log.info("staff %s is %s (%s conversations moved)", staff.id, presence.value,
             len(outcome.changed))
    return outcome


def check_timers(session: Session, *, desk: Desk) -> Outcome:
    """First-response timers: a late assignee's thread goes to someone else suitable (both
    told), or stays and the assignee is reminded; an urgent thread nobody suitable can take
    alerts the online supervisors again; queued threads are retried."""
    outcome = Outcome()
    late = list(session.scalars(
        select(Conversation).where(
            Conversation.status == ConversationStatus.assigned,
            Conversation.first_response_at.is_(None),
            Conversation.first_response_due_at.is_not(None),
            Conversation.first_response_due_at <= desk.now,
        ).order_by(Conversation.first_response_due_at)
    ))

    def reassign(conversation: Conversation) -> None:
        late_id = conversation.assignee_id
        minutes = policy.first_response_minutes(conversation.topic or "general", desk.topics)
        routed = handoff.route(
            session=session, conversation=conversation, desk=desk, actor="timer",
            reason=f"no first response within {minutes} min", exclude=frozenset({late_id}),
            queue_if_nobody=False,
        )
        if routed.status == ConversationStatus.assigned and routed.assignee_id != late_id:
            outcome.add(conversation, routed)
            return
        # Nobody else suitable is free: it stays; remind the assignee, alert if urgent.
        conversation.first_response_due_at = desk.now + dt.timedelta(minutes=minutes)
        conversations.add_activity(
            session=session, conversation=conversation,
            text=f"first response late ({minutes} min) and nobody else suitable is free",
            data={"first_response_late": {"staff_id": late_id}},
        )
        publish_on_commit(session, Event("conversation.first_response_late", conversation.id,
                                         {"staff_id": late_id}))
        if conversation.priority == Priority.urgent:
            pick = policy.choose(
                routing.need_for(session=session, conversation=conversation,
                                 exclude=frozenset({late_id})),
                routing.candidates(session=session), desk.topics, now=desk.now, tz=desk.tz)
            outcome.alerts.append(handoff.alert_supervisors(
                session=session, conversation=conversation, pick=pick, desk=desk))

    _each(session, late, reassign)
    route_queued(session, desk=desk, outcome=outcome)
    overdue = list(session.scalars(
        select(Conversation).where(
            Conversation.status == ConversationStatus.queued,
            Conversation.priority == Priority.urgent,
            Conversation.first_response_due_at.is_not(None),
            Conversation.first_response_due_at <= desk.now,
        ).order_by(Conversation.first_response_due_at, Conversation.id)
    ))
    for conversation in overdue:
        # The supervisors are reminded once per target period; the due time stays where the
        # fan's wait put it (moving it made a night's queue look "1:48 left" forever).
        minutes = policy.first_response_minutes(conversation.topic or "general", desk.topics)
        if conversation.alerted_at is not None \
                and desk.now < conversation.alerted_at + dt.timedelta(minutes=minutes):
            continue
        candidates = routing.candidates(session=session)
        pick = policy.choose(routing.need_for(session=session, conversation=conversation),
                             candidates, desk.topics, now=desk.now, tz=desk.tz)
        outcome.alerts.append(handoff.alert_supervisors(
            session=session, conversation=conversation, pick=pick, desk=desk))
    session.commit()
    return outcome
