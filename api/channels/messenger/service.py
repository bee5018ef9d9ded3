"""Messenger webhook events → the transcript (units of work; each commits once)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.channels.common import clean_text
from api.conversations import service as conversations
from api.conversations.models import Message
from api.enums import Channel, DeliveryStatus, MessageKind, SenderType
from api.events import Event, publish_on_commit
from api.intake import Incoming

log = logging.getLogger(__name__)

OUR_METADATA_PREFIX = "sb:"


def iter_events(payload: dict[str, Any]):
    """Every event of every entry: ``(source, event)`` with source ``messaging``/``standby``."""
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for source in ("messaging", "standby"):
            events = entry.get(source)
            if isinstance(events, list):
                for ev in events:
                    if isinstance(ev, dict):
                        yield source, ev


def _psid(ev: dict[str, Any], key: str) -> str | None:
    who = ev.get(key)
    if isinstance(who, dict) and isinstance(who.get("id"), (str, int)):
        return str(who["id"])[:128]
    return None


def _ms(value: Any) -> dt.datetime | None:
    if isinstance(value, (int, float)) and value > 0:
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    return None


def fan_of(ev: dict[str, Any]) -> str | None:
    """The fan an event is about: the recipient of an echo (our page wrote to them), else the
    sender."""
    message = ev.get("message")
    echo = isinstance(message, dict) and bool(message.get("is_echo"))
    return _psid(ev, "recipient" if echo else "sender")


def is_fan_message(ev: dict[str, Any]) -> bool:
    """A fan's message or postback (not an echo, a delivery or a read receipt)."""
    message = ev.get("message")
    if isinstance(message, dict):
        return not message.get("is_echo")
    return isinstance(ev.get("postback"), dict)


def fan_incoming(source: str, ev: dict[str, Any]) -> Incoming | None:
    """A fan's message or postback as the intake takes it; None without a sender id.

    A quick reply's or postback's payload is a pressed button (``pressed``: its title, what
    staff see); typed text is the fan's own words, whatever it starts with. Nothing is refused
    (Meta does not resend a refused event): strings are cleaned, and a text over
    MAX_MESSAGE_CHARS is stored and triaged whole while the bot reads its start
    (flows.rasa_text). Messenger declares no language: the fan's words decide."""
    psid = _psid(ev, "sender")
    if psid is None:
        return None
    message = ev.get("message") if isinstance(ev.get("message"), dict) else None
    payload: dict[str, Any] = {}
    pressed = None
    if message is not None:
        mid = message.get("mid")
        text = message.get("text") if isinstance(message.get("text"), str) else None
        qr = message.get("quick_reply")
        if isinstance(qr, dict) and isinstance(qr.get("payload"), str):
            payload["quick_reply"] = qr["payload"][:1000]
            pressed = clean_text(text or "")
            text = qr["payload"]
        if isinstance(message.get("attachments"), list):
            payload["attachments"] = [
                {"type": a.get("type"), "url": (a.get("payload") or {}).get("url")}
                for a in message["attachments"][:10] if isinstance(a, dict)
            ]
    else:
        pb = ev["postback"]
        mid = pb.get("mid") or f"postback:{psid}:{ev.get('timestamp')}"
        title = str(pb.get("title") or "")[:200]
        if isinstance(pb.get("payload"), str):
            text, pressed = pb["payload"], clean_text(title)
        else:
            text = pb.get("title") if isinstance(pb.get("title"), str) else None
        payload["postback"] = {"title": title}
    if text is not None:
        text = clean_text(text)
    return Incoming(
        channel=Channel.messenger,
        external_id=psid,
        text=text or None,
        message_id=str(mid) if mid else None,
        payload=payload or None,
        pressed=pressed,
        standby=source == "standby",
        strict=False,
    )


def handle_event(
    session: Session, *, ev: dict[str, Any], counts: Counter[str], app_id: str | None,
) -> None:
    """Record one event that is not a fan's message (fan messages go through the intake):
    echoes, deliveries, read receipts."""
    message = ev.get("message") if isinstance(ev.get("message"), dict) else None
    if message is not None and message.get("is_echo"):
        _echo(session, ev, message, counts, app_id)
        return
    if isinstance(ev.get("delivery"), dict):
        _delivery(session, ev["delivery"], counts)
        return
    if isinstance(ev.get("read"), dict):
        _read(session, ev, counts)
        return
    counts["ignored"] += 1
    log.info("messenger: ignoring event with keys %s", sorted(ev)[:8])


def _echo(session, ev, message, counts, app_id) -> None:
    metadata = message.get("metadata") if isinstance(message.get("metadata"), str) else ""
    mid = message.get("mid")
    if metadata.startswith(OUR_METADATA_PREFIX):
        uid = metadata[len(OUR_METADATA_PREFIX):]
        ours = session.scalar(select(Message).where(Message.uid == uid))
        if ours is not None and ours.channel_message_id is None and mid:
            ours.channel_message_id = str(mid)[:255]
            session.commit()
        counts["echo"] += 1
        return
    if app_id is not None and str(message.get("app_id")) == str(app_id):
        counts["echo"] += 1
        return
    # An echo of a message we did not send: a person answered from Meta's own inbox.
    psid = _psid(ev, "recipient")
    if psid is None:
        counts["invalid"] += 1
        return
    if mid and conversations.find_by_channel_message_id(
        session=session, channel=Channel.messenger, channel_message_id=str(mid)
    ):
        counts["duplicate"] += 1
        return
    conversation, _ = conversations.open_for(
        session=session, channel=Channel.messenger, external_id=psid
    )
    reply = conversations.add_reply(
        session=session, conversation=conversation, sender_type=SenderType.staff,
        text=clean_text(message["text"]) if isinstance(message.get("text"), str) else None,
        payload={"external_app_id": str(message.get("app_id") or "")[:40]},
    )
    reply.channel_message_id = str(mid)[:255] if mid else None
    reply.delivery_status = DeliveryStatus.sent
    conversations.add_activity(
        session=session, conversation=conversation,
        text="a person answered from another app (Meta inbox): takeover",
        data={"external_takeover": {"app_id": str(message.get("app_id") or "")[:40]}},
    )
    publish_on_commit(session, Event("conversation.external_takeover", conversation.id,
                                     {"message_id": reply.id}))
    session.commit()
    counts["external_echo"] += 1


def _delivery(session, delivery, counts) -> None:
    mids = [str(m)[:255] for m in delivery.get("mids") or [] if isinstance(m, (str, int))]
    if mids:
        session.execute(
            update(Message)
            .where(
                Message.channel == Channel.messenger,
                Message.kind == MessageKind.outgoing,
                Message.channel_message_id.in_(mids),
                Message.delivery_status.in_([DeliveryStatus.pending, DeliveryStatus.sent]),
            )
            .values(delivery_status=DeliveryStatus.delivered)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    counts["delivery"] += 1


def _read(session, ev, counts) -> None:
    psid = _psid(ev, "sender")
    watermark = _ms(ev["read"].get("watermark"))
    identity = (
        conversations.get_identity(session=session, channel=Channel.messenger, external_id=psid)
        if psid else None
    )
    if identity is not None and watermark is not None:
        conv = conversations.current_for_identity(session=session, identity_id=identity.id)
        if conv is not None:
            session.execute(
                update(Message)
                .where(
                    Message.conversation_id == conv.id,
                    Message.kind == MessageKind.outgoing,
                    Message.created_at <= watermark,
                    Message.delivery_status.in_([DeliveryStatus.sent, DeliveryStatus.delivered]),
                )
                .values(delivery_status=DeliveryStatus.read)
                .execution_options(synchronize_session=False)
            )
            session.commit()
    counts["read"] += 1


# -- personas (the sends themselves are the outbox's: api/outbox) -------------------------
def persona_of(session: Session, *, handle: str | None) -> str | None:
    """The Messenger persona id stored for a staff member."""
    from api.staff import service as staff_service

    staff = staff_service.get_by_handle(session=session, handle=handle) if handle else None
    return staff.persona_id if staff else None


def save_persona(session: Session, *, handle: str | None, persona_id: str) -> None:
    from api.staff import service as staff_service

    staff = staff_service.get_by_handle(session=session, handle=handle) if handle else None
    if staff is not None:
        staff.persona_id = persona_id[:64]
        session.commit()
