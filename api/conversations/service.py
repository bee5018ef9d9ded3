"""Conversations and their transcript: data access and rules (no commits here)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from api.conversations.models import ChannelIdentity, Conversation, Fan, Message
from api.conversations.state import check
from api.db import utcnow
from api.enums import (
    Channel,
    ConversationStatus,
    DeliveryStatus,
    MessageKind,
    Presence,
    RelayStatus,
    SenderType,
)
from api.events import Event, publish_on_commit
from api.outbox import service as outbox
from api.staff.models import Staff

log = logging.getLogger(__name__)


class TransitionConflict(RuntimeError):
    """The conversation changed under us (another router or person moved it first)."""


def get(*, session: Session, conversation_id: int) -> Conversation | None:
    """Load one conversation by id."""
    return session.get(Conversation, conversation_id)


def get_identity(*, session: Session, channel: Channel, external_id: str) -> ChannelIdentity | None:
    """Find a channel identity."""
    return session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
    )


def last_active(identity: ChannelIdentity) -> dt.datetime:
    """When the fan last used this identity (message, or web chat connection)."""
    return identity.last_inbound_at or identity.created_at


def current_for_identity(*, session: Session, identity_id: int,
                         lock: bool = False) -> Conversation | None:
    """The identity's latest conversation (open or resolved); ``lock``: its row locked for
    this transaction (PostgreSQL ``FOR NO KEY UPDATE``; SQLite has one writer anyway)."""
    query = (select(Conversation)
             .where(Conversation.identity_id == identity_id)
             .order_by(Conversation.id.desc())
             .limit(1))
    if lock:
        query = query.with_for_update(key_share=True, of=Conversation)
    return session.scalar(query)


def open_for(
    *, session: Session, channel: Channel, external_id: str, language: str | None = None,
    lock: bool = False,
) -> tuple[Conversation, bool]:
    """Get or create the fan, identity and conversation for a channel address.

    Returns ``(conversation, created)``. Safe against a concurrent creator (unique constraint).
    ``lock``: an existing conversation's row is locked as it is read (a fan message is stored:
    see :func:`api.flows.claim_in_line`).
    """
    conversation = latest_for_address(session=session, channel=channel,
                                      external_id=external_id, lock=lock)
    if conversation is None:
        return _open_first(session=session, channel=channel, external_id=external_id,
                           language=language, lock=lock)
    return _with_declared(conversation, language), False


def _with_declared(conversation: Conversation, language: str | None) -> Conversation:
    """A client's declared language only fills a gap: the fan's own words decide after that
    (api/conversations/language.py)."""
    if language and conversation.language is None:
        conversation.language = language
    return conversation


def latest_for_address(*, session: Session, channel: Channel, external_id: str,
                       lock: bool = False) -> Conversation | None:
    """The latest conversation of a channel address, with its identity, in one query (every
    fan message starts here); ``lock`` as in :func:`current_for_identity`."""
    query = (select(Conversation)
             .join(Conversation.identity)
             .where(ChannelIdentity.channel == channel,
                    ChannelIdentity.external_id == external_id)
             .options(contains_eager(Conversation.identity))
             .order_by(Conversation.id.desc())
             .limit(1))
    if lock:
        query = query.with_for_update(key_share=True, of=Conversation)
    return session.scalar(query)


def _open_first(*, session: Session, channel: Channel, external_id: str, language: str | None,
                lock: bool) -> tuple[Conversation, bool]:
    """An address with no conversation yet: its identity (new or existing) gets one."""
    identity = get_identity(session=session, channel=channel, external_id=external_id)
    if identity is None:
        # The identity and its first conversation are created together, so two concurrent
        # first messages from one address can never open two conversations.
        try:
            with session.begin_nested():
                fan = Fan(language=language)
                session.add(fan)
                session.flush()
                identity = ChannelIdentity(fan_id=fan.id, channel=channel, external_id=external_id)
                session.add(identity)
                session.flush()
                conversation = _new_conversation(session, identity, channel, language)
        except IntegrityError:
            identity = get_identity(session=session, channel=channel, external_id=external_id)
            if identity is None:
                raise
        else:
            return conversation, True
    conversation = current_for_identity(session=session, identity_id=identity.id, lock=lock)
    if conversation is not None:  # created meanwhile by a concurrent first message
        return _with_declared(conversation, language), False
    return _new_conversation(session, identity, channel, language), True


def language_decided(*, session: Session, conversation_id: int, before_id: int) -> bool:
    """Whether an earlier fan message of the conversation had its language decided (widget and
    button payloads such as "/greet" do not count: they have no words)."""
    return session.scalar(
        select(Message.id).where(
            Message.conversation_id == conversation_id, Message.kind == MessageKind.incoming,
            Message.sender_type == SenderType.fan, Message.id < before_id,
            Message.language.is_not(None), Message.text.is_not(None),
            Message.text.not_like("/%"),
        ).limit(1)
    ) is not None


def _new_conversation(
    session: Session, identity: ChannelIdentity, channel: Channel, language: str | None
) -> Conversation:
    conversation = Conversation(
        fan_id=identity.fan_id,
        identity_id=identity.id,
        channel=channel,
        status=ConversationStatus.bot,
        language=language,
        reasons=[],
    )
    session.add(conversation)
    session.flush()
    publish_on_commit(
        session,
        Event("conversation.opened", conversation.id, {"channel": channel.value}),
    )
    log.info("conversation %s opened on %s", conversation.id, channel.value)
    return conversation


def add_activity(
    *, session: Session, conversation: Conversation, text: str, data: dict[str, Any] | None = None,
    staff_id: int | None = None,
) -> Message:
    """Record an activity entry (a state change, a report taken, ...) in the transcript."""
    msg = Message(
        conversation_id=conversation.id,
        channel=conversation.channel,
        kind=MessageKind.activity,
        sender_type=SenderType.staff if staff_id else SenderType.system,
        staff_id=staff_id,
        text=text,
        payload=data or {},
    )
    session.add(msg)
    session.flush()
    return msg


def transition(
    *,
    session: Session,
    conversation: Conversation,
    to: ConversationStatus,
    actor: str,
    reason: str,
    assignee_id: int | None = None,
    staff_id: int | None = None,
) -> Message:
    """Move ``conversation`` to ``to`` (refusing illegal moves) and record who and why.

    The update is conditional on the conversation's ``version``: when someone else moved it
    first, :class:`TransitionConflict` is raised and nothing changes.
    """
    current = conversation.status
    check(current, to)
    if to == ConversationStatus.assigned and assignee_id is None:
        raise ValueError("an assigned conversation needs an assignee")
    now = utcnow()
    values: dict[str, Any] = {
        "status": to,
        "version": conversation.version + 1,
        "updated_at": now,
        "assignee_id": assignee_id if to == ConversationStatus.assigned else None,
    }
    if to == ConversationStatus.assigned:
        values["assigned_at"] = now
        values["last_assignee_id"] = assignee_id
    if to == ConversationStatus.resolved:
        values["resolved_at"] = now
    result = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.version == conversation.version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise TransitionConflict(f"conversation {conversation.id} changed concurrently")
    session.refresh(conversation)
    data = {
        "from": current.value,
        "to": to.value,
        "actor": actor,
        "reason": reason,
        "assignee_id": conversation.assignee_id,
    }
    activity = add_activity(
        session=session,
        conversation=conversation,
        text=f"{current.value} → {to.value} by {actor}: {reason}",
        data={"transition": data},
        staff_id=staff_id,
    )
    publish_on_commit(session, Event("conversation.status_changed", conversation.id, data))
    log.info("conversation %s: %s -> %s by %s", conversation.id, current.value, to.value, actor)
    return activity


def find_by_channel_message_id(
    *, session: Session, channel: Channel, channel_message_id: str
) -> Message | None:
    """A message already stored under the channel's own id (for de-duplication)."""
    return session.scalar(
        select(Message).where(
            Message.channel == channel, Message.channel_message_id == channel_message_id
        )
    )


def find_fan_message(
    *, session: Session, conversation_id: int, fan_message_id: str
) -> Message | None:
    """A fan message of this conversation already stored under its id (for de-duplication):
    ids are the fan's own, so another fan's "1" is a different message."""
    return session.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id, Message.fan_message_id == fan_message_id
        )
    )


# A fan who writes again this soon after a resolve is picking up the same thread.
CONTINUITY_WINDOW = dt.timedelta(minutes=30)


def reopen(*, session: Session, conversation: Conversation) -> Message:
    """A resolved thread the fan writes to again: back to the person who resolved it when that
    was within ``CONTINUITY_WINDOW`` and they are online (continuity), else back to the bot."""
    person = (session.get(Staff, conversation.last_assignee_id)
              if conversation.last_assignee_id is not None else None)
    recent = (conversation.resolved_at is not None
              and utcnow() - conversation.resolved_at <= CONTINUITY_WINDOW)
    if person is not None and person.active and person.presence == Presence.online and recent:
        return transition(
            session=session, conversation=conversation, to=ConversationStatus.assigned,
            assignee_id=person.id, actor="fan",
            reason=f"the fan wrote again soon after; back to {person.name}",
        )
    return transition(
        session=session, conversation=conversation, to=ConversationStatus.bot,
        actor="fan", reason="the fan wrote again",
    )


def add_fan_message(
    *,
    session: Session,
    conversation: Conversation,
    text: str | None,
    fan_message_id: str | None = None,
    payload: dict[str, Any] | None = None,
    relay_status: RelayStatus | None = None,
) -> Message | None:
    """Store an incoming fan message; ``None`` when its id was seen before in this conversation.

    Decides the bot path from the conversation state: ``bot`` relays, ``resolved`` reopens to
    ``bot`` first, ``queued``/``assigned`` hold the message for the person who owns it.
    """
    if fan_message_id is not None and find_fan_message(
        session=session, conversation_id=conversation.id, fan_message_id=fan_message_id
    ):
        return None
    if conversation.status == ConversationStatus.resolved and relay_status is None:
        reopen(session=session, conversation=conversation)
    if relay_status is None:
        relay_status = (
            RelayStatus.pending
            if conversation.status == ConversationStatus.bot
            else RelayStatus.held
        )
    msg = Message(
        conversation_id=conversation.id,
        channel=conversation.channel,
        kind=MessageKind.incoming,
        sender_type=SenderType.fan,
        text=text,
        payload=payload,
        fan_message_id=fan_message_id,
        relay_status=relay_status,
    )
    if fan_message_id is None:  # nothing unique to collide on: no savepoint needed
        session.add(msg)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(msg)
                session.flush()
        except IntegrityError:
            if find_fan_message(session=session, conversation_id=conversation.id,
                                fan_message_id=fan_message_id) is None:
                raise  # refused for another reason: not a duplicate, must not be dropped
            log.info("duplicate %s message dropped (conversation %s)",
                     conversation.channel.value, conversation.id)
            return None
    now = utcnow()
    conversation.last_fan_message_at = now
    if relay_status != RelayStatus.standby:
        conversation.identity.last_inbound_at = now
    publish_on_commit(
        session,
        Event("message.created", conversation.id,
              {"message_id": msg.id, "kind": "incoming", "sender": "fan"}),
    )
    return msg


# How far back a button the bot offered still counts when the fan presses it.
OFFERED_LOOKBACK = 50


def offered_button(
    *, session: Session, conversation_id: int, payload: str
) -> dict[str, Any] | None:
    """The button or quick reply (``{"title", "payload"}``) the bot or the desk offered in this
    conversation whose payload is ``payload``, newest first; None when nobody offered it."""
    rows = session.scalars(
        select(Message.payload)
        .where(Message.conversation_id == conversation_id, Message.kind == MessageKind.outgoing)
        .order_by(Message.id.desc())
        .limit(OFFERED_LOOKBACK)
    )
    for stored in rows:
        for button in (stored or {}).get("buttons") or []:
            if isinstance(button, dict) and button.get("payload") == payload:
                return button
    return None


def add_reply(
    *,
    session: Session,
    conversation: Conversation,
    sender_type: SenderType,
    text: str | None,
    payload: dict[str, Any] | None = None,
    reply_to_id: int | None = None,
    staff_id: int | None = None,
    delivery_status: DeliveryStatus = DeliveryStatus.pending,
) -> Message:
    """Store an outgoing message (bot, staff or system) waiting for delivery; on a push channel
    its outbox row is written in the same transaction (api/outbox), so no path can store a reply
    that nobody will send. ``delivery_status=sent``: a pull channel's reply handed out in the
    response of the request that is storing it."""
    msg = Message(
        conversation_id=conversation.id,
        channel=conversation.channel,
        kind=MessageKind.outgoing,
        sender_type=sender_type,
        staff_id=staff_id,
        text=text,
        payload=payload or None,
        reply_to_id=reply_to_id,
        delivery_status=delivery_status,
    )
    session.add(msg)
    session.flush()
    if conversation.channel in outbox.PUSH_CHANNELS:
        outbox.enqueue(session=session, message_id=msg.id, conversation_id=conversation.id,
                       channel=conversation.channel,
                       recipient=conversation.identity.external_id)
    publish_on_commit(
        session,
        Event("message.created", conversation.id,
              {"message_id": msg.id, "kind": "outgoing", "sender": sender_type.value,
               "channel": conversation.channel.value}),
    )
    return msg


def pending_relay(*, session: Session, conversation_id: int) -> list[Message]:
    """Incoming messages of a conversation still waiting for their bot turn, oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.relay_status == RelayStatus.pending,
            )
            .order_by(Message.id)
        )
    )


def replies_to(*, session: Session, conversation_id: int, message_id: int) -> list[Message]:
    """The replies to a fan message of the conversation (bot, system, a handoff's text),
    oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id,
                   Message.reply_to_id == message_id, Message.kind == MessageKind.outgoing)
            .order_by(Message.id)
        )
    )


def undelivered_replies(*, session: Session, conversation_id: int) -> list[Message]:
    """Outgoing messages not yet handed to the fan, oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.kind == MessageKind.outgoing,
                Message.delivery_status == DeliveryStatus.pending,
            )
            .order_by(Message.id)
        )
    )


def mark_delivery(
    *, session: Session, message_ids: list[int], status: DeliveryStatus, error: str | None = None
) -> None:
    """Set the delivery status of outgoing messages."""
    if not message_ids:
        return
    session.execute(
        update(Message)
        .where(Message.id.in_(message_ids))
        .values(delivery_status=status, delivery_error=error)
        .execution_options(synchronize_session=False)
    )


def search(
    *, session: Session, status: ConversationStatus | None = None, assignee_id: int | None = None,
    topic: str | None = None, visible_to: int | None = None, limit: int = 100,
) -> list[Conversation]:
    """Conversations matching the filters, newest activity first.

    ``visible_to``: a (non-supervisor) staff id — only their own threads and the queue.
    """
    query = select(Conversation)
    if status is not None:
        query = query.where(Conversation.status == status)
    if assignee_id is not None:
        query = query.where(Conversation.assignee_id == assignee_id)
    if topic is not None:
        query = query.where(Conversation.topic == topic)
    if visible_to is not None:
        query = query.where(
            (Conversation.assignee_id == visible_to)
            | (Conversation.status == ConversationStatus.queued)
        )
    return list(session.scalars(
        query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit)
    ))


def transcript(*, session: Session, conversation_id: int) -> list[Message]:
    """Every message and activity of a conversation, oldest first."""
    return list(session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    ))


def delivery_status(*, session: Session, message_id: int) -> str | None:
    """The delivery status of one outgoing message."""
    msg = session.get(Message, message_id)
    return msg.delivery_status.value if msg and msg.delivery_status else None
