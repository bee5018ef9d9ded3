"""The inbox's reads and writes: lists, the conversation's context, notes, take, transfer,
flags and canned responses (no commits here except in the ``*_flow`` units of work)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.conversations import service as conversations
from api.conversations import waiting
from api.conversations.models import Conversation, Message
from api.csat import service as csat
from api.enums import Channel, ConversationStatus, DeliveryStatus, MessageKind, Priority, SenderType
from api.events import Event, publish_on_commit
from api.handoff import texts
from api.handoff.flows import (
    HUMAN_AGENT_WINDOW,
    RESPONSE_WINDOW,
    Conflict,
    NotAllowed,
    load_for_staff,
    may_act,
)
from api.inbox import schemas
from api.inbox.models import CannedResponse, MessageFlag, Note
from api.lost_property.models import LostPropertyReport
from api.routing import policy
from api.routing import service as routing
from api.routing.policy import TopicRule
from api.snapshots import ConversationRef, out_ref
from api.staff.models import Staff

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{(first_name|agent_name|agent_first_name)\}")


def is_supervisor(staff: Staff) -> bool:
    return staff.role.value in ("supervisor", "admin")


def can_take(staff: Staff, conversation: Conversation, topics: Mapping[str, TopicRule]) -> bool:
    """A queued thread may be taken by someone with its topic's skill (or fallback skill);
    supervisors take any."""
    if conversation.status != ConversationStatus.queued:
        return False
    if is_supervisor(staff):
        return True
    topic = conversation.topic or "general"
    rule = topics.get(topic)
    skills = set(staff.skills or ())
    return topic in skills or bool(rule and rule.fallback_skill in skills)


def may_read(staff: Staff, conversation: Conversation,
             topics: Mapping[str, TopicRule]) -> bool:
    """The inbox's read rule: staff read their own threads and those they could take;
    supervisors read all (the live event stream filters by it too: api/inbox/visibility.py)."""
    return may_act(staff, conversation) or can_take(staff, conversation, topics)


def last_texts(session: Session, statuses: list[ConversationStatus]) -> dict[int, str]:
    """Each thread's last message text (not activity), for threads in ``statuses``: one query."""
    last_ids = (select(func.max(Message.id))
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.status.in_(statuses), Message.kind != MessageKind.activity)
                .group_by(Message.conversation_id))
    return {cid: text or "" for cid, text in session.execute(
        select(Message.conversation_id, Message.text).where(Message.id.in_(last_ids)))}


def row(session: Session, c: Conversation, topics: Mapping[str, TopicRule],
        names: dict[int, Staff], *, since: dt.datetime | None, now: dt.datetime,
        last_text: str | None = None) -> dict[str, Any]:
    """One line of a list (no fan text except the last message's first 120 characters);
    ``since``: when the fan started waiting (api/conversations/waiting.py); ``last_text``
    when the caller fetched it with :func:`last_texts`."""
    assignee = names.get(c.assignee_id) if c.assignee_id else None
    if last_text is None:
        last = session.scalar(select(Message).where(Message.conversation_id == c.id,
                                                    Message.kind != MessageKind.activity)
                              .order_by(Message.id.desc()).limit(1))
        last_text = (last.text or "") if last else ""
    return {
        "id": c.id, "status": c.status.value, "channel": c.channel.value,
        "topic": c.topic, "priority": c.priority.value if c.priority else None,
        "language": c.language, "reasons": list(c.reasons or []),
        "assignee": {"handle": assignee.handle, "name": assignee.name} if assignee else None,
        **waiting.figures(since, topic=c.topic, topics=topics, now=now),
        "first_response_due_at": c.first_response_due_at.isoformat()
        if c.first_response_due_at else None,
        "first_response_at": c.first_response_at.isoformat() if c.first_response_at else None,
        "target_minutes": policy.first_response_minutes(c.topic or "general", topics),
        "last_text": last_text[:120],
        "fan": fan_label(c),
    }


def fan_label(c: Conversation) -> str:
    return f"Fan #{c.fan_id} · {c.channel.value}"


def lists(session: Session, *, staff_id: int, topics: Mapping[str, TopicRule],
          now: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """Mine (assigned to me), the queue I could take, and — supervisors — every open thread
    and the urgent ones nobody has (the alert banner); each urgent first, then the longest
    wait."""
    staff = session.get(Staff, staff_id)
    names = {s.id: s for s in session.scalars(select(Staff))}
    with_people = [ConversationStatus.assigned, ConversationStatus.queued]
    open_rows = [(c, waiting.aware(since)) for c, since in session.execute(
        select(Conversation, waiting.waiting_since_expr())
        .where(Conversation.status.in_(with_people))
        .order_by(*waiting.with_people_order()))]
    texts = last_texts(session, with_people)
    built: dict[int, dict[str, Any]] = {}  # a supervisor's thread is in several lists

    def rows(pick) -> list[dict[str, Any]]:
        return [built.get(c.id) or built.setdefault(
                    c.id, row(session, c, topics, names, since=since, now=now,
                              last_text=texts.get(c.id, "")))
                for c, since in open_rows if pick(c)]

    out = {"mine": rows(lambda c: c.status == ConversationStatus.assigned
                        and c.assignee_id == staff.id),
           "queue": rows(lambda c: can_take(staff, c, topics)), "all": [],
           "urgent_unassigned": []}
    if is_supervisor(staff):
        out["all"] = rows(lambda c: True)
        out["urgent_unassigned"] = [r for r in out["all"] if r["status"] == "queued"
                                    and r["priority"] == Priority.urgent.value]
    return out


def messenger_window(c: Conversation, now: dt.datetime) -> dict[str, Any] | None:
    """Seconds left in Messenger's 24-hour and 7-day windows (None off Messenger)."""
    if c.channel != Channel.messenger:
        return None
    last = c.identity.last_inbound_at
    if last is None:
        return {"response_s": 0, "human_agent_s": 0}
    age = now - last
    return {"response_s": max(0, int((RESPONSE_WINDOW - age).total_seconds())),
            "human_agent_s": max(0, int((HUMAN_AGENT_WINDOW - age).total_seconds()))}


def _sender(m: Message, names: dict[int, Staff]) -> str:
    if m.sender_type == SenderType.staff and m.staff_id in names:
        return names[m.staff_id].name
    return {"fan": "Fan", "bot": "Bot", "system": "System"}.get(m.sender_type.value, "Staff")


def activity_text(m: Message, c: Conversation, names: dict[int, Staff]) -> str:
    """Transcript text; an assignment reads "handed to Noor: safety — 'can't find my friend'"."""
    move = (m.payload or {}).get("transition") if m.kind == MessageKind.activity else None
    if not move or move.get("to") != "assigned" or move.get("assignee_id") not in names:
        return m.text or ""
    who = texts.first_name(names[move["assignee_id"]].name)
    text = f"handed to {who}: {move.get('reason') or ''}"
    if move.get("actor") == "triage" and c.reasons:
        text += " — " + c.reasons[0].split(": ", 1)[-1]
    return text


def context(session: Session, *, conversation_id: int, staff_id: int,
            topics: Mapping[str, TopicRule], now: dt.datetime) -> dict[str, Any]:
    """Everything the open conversation pane shows. LookupError / NotAllowed when unreadable:
    staff read their own threads and those they could take; supervisors read all."""
    c = conversations.get(session=session, conversation_id=conversation_id)
    staff = session.get(Staff, staff_id)
    if c is None or staff is None:
        raise LookupError("conversation not found")
    if not may_read(staff, c, topics):
        raise NotAllowed("this conversation is not assigned to you")
    names = {s.id: s for s in session.scalars(select(Staff))}
    transcript = []
    for m in conversations.transcript(session=session, conversation_id=c.id):
        text = activity_text(m, c, names)
        command = (m.payload or {}).get("command") if m.kind == MessageKind.incoming else None
        if isinstance(command, dict):
            # A pressed button reads as its title; the widget's start command (/greet) is
            # nothing the fan did. Any other "/..." is what the fan wrote, shown as written.
            if not command.get("title"):
                continue
            text = command["title"]
        transcript.append({
            "id": m.id, "kind": m.kind.value, "sender_type": m.sender_type.value,
            "sender": _sender(m, names), "text": text,
            "created_at": m.created_at.isoformat(),
            "language": m.language,  # a fan message's decided language
            # an outgoing message the fan never got, and why (api/outbox)
            "undelivered": (m.delivery_error or "not delivered")
            if m.delivery_status == DeliveryStatus.failed else None,
            "flagged": False,
            "flags": {},
        })
    # Per message, its flags by kind (``flagged``: "the bot should have known this"); a
    # needs_person flag carries its triage label.
    flags: dict[int, dict[str, str | None]] = {}
    for f in session.scalars(select(MessageFlag).where(MessageFlag.conversation_id == c.id)):
        flags.setdefault(f.message_id, {})[f.kind] = f.label
    for t in transcript:
        t["flags"] = flags.get(t["id"], {})
        t["flagged"] = "bot" in t["flags"]
    earlier = []
    for other in session.scalars(select(Conversation).where(
            Conversation.fan_id == c.fan_id, Conversation.id != c.id)
            .order_by(Conversation.id.desc()).limit(10)):
        helper = names.get(other.last_assignee_id) if other.last_assignee_id else None
        earlier.append({"id": other.id, "status": other.status.value, "topic": other.topic,
                        "created_at": other.created_at.isoformat(),
                        "helped_by": helper.name if helper else None})
    reports = [{"id": r.id, "item": r.item, "when": r.lost_when, "description": r.description,
                "status": r.status.value, "created_at": r.created_at.isoformat()}
               for r in session.scalars(select(LostPropertyReport)
                                        .where(LostPropertyReport.fan_id == c.fan_id)
                                        .order_by(LostPropertyReport.id))]
    assignee = names.get(c.assignee_id) if c.assignee_id else None
    triage = c.triage or {}
    return {
        **row(session, c, topics, names, since=waiting.waiting_since(session, c.id), now=now),
        "fan": fan_label(c),
        "triggers": list(triage.get("triggers") or []),
        "assignee": {"handle": assignee.handle, "name": assignee.name} if assignee else None,
        "transcript": transcript,
        "notes": [note_read(n, names) for n in notes(session=session, conversation_id=c.id)],
        "earlier": earlier,
        "lost_property": reports,
        "messenger_window": messenger_window(c, now),
        "csat": csat.read(session, c.id),  # the fan's satisfaction answer, if asked
        "may_act": may_act(staff, c), "may_take": can_take(staff, c, topics),
    }


def notes(*, session: Session, conversation_id: int) -> list[Note]:
    return list(session.scalars(select(Note).where(Note.conversation_id == conversation_id)
                                .order_by(Note.id)))


def note_read(n: Note, names: dict[int, Staff]) -> dict[str, Any]:
    author = names.get(n.staff_id) if n.staff_id else None
    return {"id": n.id, "text": n.text, "author": author.name if author else None,
            "created_at": n.created_at.isoformat()}


def add_note_flow(session: Session, *, conversation_id: int, staff_id: int,
                  text: str) -> dict[str, Any]:
    """A private note (staff only; never delivered)."""
    c, staff = load_for_staff(session, conversation_id, staff_id)
    note = Note(conversation_id=c.id, staff_id=staff.id, text=text)
    session.add(note)
    session.flush()
    publish_on_commit(session, Event("note.created", c.id, {"note_id": note.id}))
    session.commit()
    return note_read(note, {staff.id: staff})


def take_flow(session: Session, *, conversation_id: int, staff_id: int, desk) -> int:
    """Take a queued thread I could handle."""
    c = conversations.get(session=session, conversation_id=conversation_id)
    staff = session.get(Staff, staff_id)
    if c is None or staff is None:
        raise LookupError("conversation not found")
    if c.status != ConversationStatus.queued:
        raise Conflict(f"the conversation is {c.status.value}, not queued")
    if not can_take(staff, c, desk.topics):
        raise NotAllowed("this conversation needs a skill you do not have")
    routing.assign(session=session, conversation=c, staff=staff, now=desk.now,
                   minutes=policy.first_response_minutes(c.topic or "general", desk.topics),
                   actor=staff.handle, reason=f"taken by {staff.name}", staff_id=staff.id)
    session.commit()
    return c.id


def transfer_flow(session: Session, *, conversation_id: int, staff_id: int, to_handle: str,
                  note: str, desk):
    """Hand my thread to a colleague with a note: the colleague sees the note and an
    ``conversation.assigned`` event; the fan is told who takes over. Returns the fan notice."""
    c, staff = load_for_staff(session, conversation_id, staff_id)
    if c.status not in (ConversationStatus.assigned, ConversationStatus.queued):
        raise Conflict(f"the conversation is {c.status.value}")
    to = session.scalar(select(Staff).where(Staff.handle == to_handle, Staff.active.is_(True)))
    if to is None:
        raise LookupError("no such colleague")
    if to.id == c.assignee_id:
        raise Conflict("the conversation is already theirs")
    minutes = policy.first_response_minutes(c.topic or "general", desk.topics)
    routing.assign(session=session, conversation=c, staff=to, now=desk.now, minutes=minutes,
                   actor=staff.handle, reason=f"transferred to {to.name}"
                   + (f": {note}" if note else ""), staff_id=staff.id)
    if note:
        session.add(Note(conversation_id=c.id, staff_id=staff.id,
                         text=f"Transfer to {to.name}: {note}"))
    reply = conversations.add_reply(
        session=session, conversation=c, sender_type=SenderType.system,
        text=texts.assigned(name=to.name, title=to.title, minutes=minutes,
                            language=c.language, instead=True))
    session.commit()
    return ConversationRef.of(c), [out_ref(reply)]


def flag_reason(kind: str, label: str | None) -> str:
    """What a flag says when staff wrote no reason."""
    if kind == "needs_person":
        return f"should have come to a person: {schemas.label_name(label or '')}"
    if kind == "no_person_needed":
        return "did not need a person"
    return "the bot should have known this"


def flag_flow(session: Session, *, conversation_id: int, staff_id: int, message_id: int,
              reason: str, kind: str = "bot", label: str | None = None) -> int:
    """Flag a fan message for the operators (one flag per message and kind: flagging again
    returns the first flag)."""
    c, staff = load_for_staff(session, conversation_id, staff_id)
    m = session.get(Message, message_id)
    if m is None or m.conversation_id != c.id:
        raise LookupError("message not found")
    if m.kind != MessageKind.incoming:
        raise Conflict("only a fan's message can be flagged")
    existing = session.scalar(select(MessageFlag).where(MessageFlag.message_id == m.id,
                                                        MessageFlag.kind == kind))
    if existing is not None:
        return existing.id
    flag = MessageFlag(message_id=m.id, conversation_id=c.id, staff_id=staff.id, kind=kind,
                       label=label if kind == "needs_person" else None,
                       reason=reason or flag_reason(kind, label), status="new")
    session.add(flag)
    session.flush()
    publish_on_commit(session, Event("message.flagged", c.id, {"message_id": m.id}))
    session.commit()
    return flag.id


def fill(text: str, *, fan_name: str | None, agent_name: str) -> str:
    """Canned response placeholders: {first_name} (the fan's, else "there"), {agent_name},
    {agent_first_name}."""
    values = {"first_name": texts.first_name(fan_name) if fan_name else "there",
              "agent_name": agent_name, "agent_first_name": texts.first_name(agent_name)}
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def canned_list(*, session: Session) -> list[CannedResponse]:
    return list(session.scalars(select(CannedResponse).order_by(CannedResponse.shortcut)))
