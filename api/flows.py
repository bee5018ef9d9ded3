"""Units of work that span several domains; each commits once, events go out after commit.

Each function takes a fresh ``session`` (run in a worker thread by ``Database.run``) and returns
plain snapshots the async side can use without touching the database again.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, joinedload

from api.cluster import service as cluster
from api.cluster.service import Member
from api.conversations import service as conversations
from api.conversations.language import LanguageDecider
from api.conversations.models import Conversation, Message
from api.csat import service as csat
from api.db import utcnow
from api.enums import (
    Channel,
    ConversationStatus,
    DeliveryStatus,
    MessageKind,
    Priority,
    RelayStatus,
    SenderType,
)
from api.events import Event, publish_on_commit
from api.handoff import service as handoff
from api.handoff.service import Desk
from api.logs import bind_conversation
from api.lost_property import service as lost_property
from api.relay.schemas import BotTurn
from api.snapshots import (
    ConversationRef,
    HistoryTurn,
    OutgoingRef,
    PendingTurn,
    Received,
    StoredTurn,
    out_ref,
)

log = logging.getLogger(__name__)

HOLDING_REPLY = {
    "en": "Sorry, I can't answer right now. Your message is saved and you'll get an answer "
    "here as soon as possible.",
    "es": "Lo siento, ahora mismo no puedo responder. Tu mensaje está guardado y te "
    "responderemos aquí lo antes posible.",
}
TEXT_ONLY_REPLY = {
    "en": "Sorry, I can only read text messages. Please type your question.",
    "es": "Lo siento, solo puedo leer mensajes de texto. Escribe tu pregunta, por favor.",
}


# Rasa's intent-command prefix (rasa.shared.constants.INTENT_MESSAGE_PREFIX), and what keeps a
# fan's own "/..." text from being read as one (Rasa strips whitespace, not U+2060).
COMMAND_PREFIX = "/"
WORD_JOINER = "\u2060"

# Intents meaning the bot did not understand the message.
NOT_UNDERSTOOD = frozenset({"nlu_fallback", "out_of_scope"})


def localized(table: dict[str, str], language: str | None) -> str:
    return table.get((language or "en")[:2], table["en"])


def open_webchat_session(
    session: Session,
    *,
    requested_id: str | None,
    idle_limit: dt.timedelta,
    declared_language: str | None = None,
) -> ConversationRef:
    """Rejoin the web chat session ``requested_id`` (the widget's stored id, shape already
    checked) or open a new one under a random id (``ConversationRef.external_id``): no id, an
    unknown one (opened under it), or a session idle for longer than ``idle_limit`` (its thread
    stays for staff, never reachable through the old id again). A declared language (the
    browser's) becomes the language of a conversation that has none yet (the greeting's)."""
    now = utcnow()
    if requested_id is not None:
        identity = conversations.get_identity(
            session=session, channel=Channel.webchat, external_id=requested_id
        )
        if identity is not None and now - conversations.last_active(identity) > idle_limit:
            log.info("web chat session of identity %s expired: a new session is issued",
                     identity.id)
            requested_id = None
    conversation, _ = conversations.open_for(
        session=session, channel=Channel.webchat,
        external_id=requested_id or secrets.token_hex(16), language=declared_language,
    )
    conversation.identity.last_inbound_at = now  # a connection keeps the session alive
    session.commit()
    return ConversationRef.of(conversation)


def _recent_duplicate(
    session: Session, conversation_id: int, text: str | None, window_s: float
) -> bool:
    last = session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.kind == MessageKind.incoming)
        .order_by(Message.id.desc())
        .limit(1)
    )
    return (
        last is not None
        and last.text == text
        and (utcnow() - last.created_at).total_seconds() < window_s
    )


def receive_fan_message(
    session: Session,
    *,
    channel: Channel,
    external_id: str,
    text: str | None,
    fan_message_id: str | None = None,
    declared_language: str | None = None,
    languages: LanguageDecider | None = None,
    payload: dict[str, Any] | None = None,
    relay_status: RelayStatus | None = None,
    dedup_window_s: float = 0.0,
    pressed: str | None = None,
    start_commands: frozenset[str] = frozenset(),
    claim_for: Member | None = None,
    history: int = 5,
) -> Received:
    """Store a fan's message before anything else happens; decide its language (``languages``;
    ``declared_language`` is the client's hint), whether the bot gets it, and whether it reaches
    Rasa as a command (:func:`command_of`).

    ``claim_for``: a message for the bot that is the only one of its conversation waiting is
    claimed for this replica in the same commit (``Received.turn``, its attempt counted: the
    first commit of its turn, see :func:`claim_in_line`)."""
    conversation, _ = conversations.open_for(
        session=session, channel=channel, external_id=external_id, language=declared_language,
        lock=True,
    )
    bind_conversation(conversation.id)  # this thread's lines; the caller binds its own
    if (
        fan_message_id is None
        and dedup_window_s > 0
        and _recent_duplicate(session, conversation.id, text, dedup_window_s)
    ):
        session.rollback()
        log.info("repeated %s message dropped (conversation %s)", channel.value, conversation.id)
        return Received(ConversationRef.of(conversation), None)
    if not text and relay_status is None:
        relay_status = RelayStatus.skipped
    command = command_of(session, conversation.id, text, pressed=pressed,
                         start_commands=start_commands)
    if command is not None:
        payload = {**(payload or {}), "command": command}
    # An answer to the satisfaction survey: never the bot's, and it reopens nothing.
    answer = (csat.answer_of(session, conversation, text, pressed=command is not None)
              if relay_status is None else None)
    if answer is not None:
        relay_status = RelayStatus.skipped
    msg = conversations.add_fan_message(
        session=session,
        conversation=conversation,
        text=text,
        fan_message_id=fan_message_id,
        payload=payload,
        relay_status=relay_status,
    )
    if msg is None:
        stored = conversations.find_fan_message(
            session=session, conversation_id=conversation.id, fan_message_id=fan_message_id
        ) if fan_message_id is not None else None
        session.rollback()
        return Received(ConversationRef.of(conversation), None,
                        duplicate_of=stored.id if stored is not None else None)
    if text and languages is not None:
        decide_language(session, conversation, msg, languages, declared_language)
    replies: list[Message] = []
    if answer is not None:
        replies.append(csat.record(session, conversation=conversation, message=msg,
                                   answer=answer))
    elif msg.relay_status == RelayStatus.skipped and conversation.status == ConversationStatus.bot:
        replies.append(
            conversations.add_reply(
                session=session, conversation=conversation, sender_type=SenderType.system,
                text=localized(TEXT_ONLY_REPLY, conversation.language), reply_to_id=msg.id,
            )
        )
    turn = (claim_in_line(session, msg, member=claim_for, history=history)
            if claim_for is not None and msg.relay_status == RelayStatus.pending else None)
    session.commit()
    log.info("message %s stored (conversation %s, %s)", msg.id, conversation.id,
             msg.relay_status.value)
    return Received(
        ConversationRef.of(conversation),
        msg.id,
        relay=msg.relay_status == RelayStatus.pending,
        replies=[out_ref(r) for r in replies],
        held=msg.relay_status == RelayStatus.held and bool(text),
        turn=turn,
    )


def claim_in_line(session: Session, msg: Message, *, member: Member,
                  history: int) -> PendingTurn | None:
    """Claim a fan message for ``member`` in the transaction that stores it, when no other
    message of its conversation is waiting for the bot (else None: the relay claims the
    conversation's turns in order, :func:`claim_next_turn`).

    Storing a message locks its conversation's row first (PostgreSQL: read ``FOR NO KEY
    UPDATE`` by :func:`conversations.open_for`; SQLite: the insert takes the database's write
    lock), so two messages of a thread stored at once are stored and looked at here one after
    the other, and the later one sees the earlier waiting: at most one is claimed, the older.
    A row nobody else can see yet needs no conditional update. The attempt is counted as
    :func:`claim_next_turn` counts a first one. The retry loop leaves the turn alone for
    ``member.stale_s`` (``next_relay_at``): its replica runs it straight after the commit, and
    only a turn it never ran is taken up again (a dead replica's, after the same wait)."""
    # Other rows only: this message's own pending changes (its language) go out with the claim,
    # in one update.
    with session.no_autoflush:
        waiting = session.scalar(
            select(Message.id).where(
                Message.conversation_id == msg.conversation_id,
                Message.relay_status == RelayStatus.pending,
                Message.id != msg.id,
            ).limit(1)
        )
        if waiting is not None:
            return None
        past = fan_history(session, conversation_id=msg.conversation_id, before_id=msg.id,
                           limit=history) if history else ()
    msg.relay_claimed_by = member.replica_id
    msg.relay_attempts = 1
    msg.next_relay_at = utcnow() + dt.timedelta(seconds=member.stale_s)
    return replace(_pending(msg, claimed=True, history=past), next_relay_at=None)


def looks_like_command(text: str | None) -> bool:
    """Whether Rasa would read ``text`` as an intent command ("/request_human{...}"): its
    RegexMessageHandler strips the text and looks for a leading "/"."""
    return bool(text) and text.strip().startswith(COMMAND_PREFIX)


def command_of(session: Session, conversation_id: int, text: str | None, *,
               pressed: str | None = None,
               start_commands: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """``{"title"}`` when a fan message that looks like a command may reach Rasa as one: the
    channel says a button was pressed (``pressed``: Messenger quick replies and postbacks, with
    the button's title), it is a start command of the channel (the widget's ``/greet``), or it is
    the payload of a button the bot or the desk offered in this conversation. Anything else is
    the fan's own text (:func:`rasa_text`)."""
    if not looks_like_command(text):
        return None
    if pressed is not None:
        return {"title": pressed[:200] or None}
    if text.strip() in start_commands:
        return {"title": None}
    button = conversations.offered_button(session=session, conversation_id=conversation_id,
                                          payload=text.strip())
    if button is None:
        return None
    return {"title": str(button.get("title") or "")[:200] or None}


def rasa_text(turn: PendingTurn, max_chars: int) -> str:
    """What Rasa receives for a fan message: a command as it is; the fan's own text that starts
    with "/" behind a word joiner (invisible, not whitespace), so Rasa reads it with NLU instead
    of as an intent command; at most ``max_chars`` characters (a long Messenger text is triaged
    whole, the bot reads its start)."""
    text = turn.text[:max_chars]
    if not turn.command and looks_like_command(text):
        return WORD_JOINER + text
    return text


def decide_language(session: Session, conversation: Conversation, msg: Message,
                    languages: LanguageDecider, declared_language: str | None) -> str:
    """The one language decision for a fan's text message: stored on the message, and on the
    conversation when it is the thread's first or a clear switch (docs/switchboard.md).

    Two messages of one thread stored at once decide one after the other, the later seeing the
    earlier's language: on PostgreSQL ``conversation`` was read under its row lock in this
    transaction (:func:`receive_fan_message` opens it with ``lock=True``); SQLite's driver reads
    it before the transaction begins, so it is read again once the message's insert holds the
    database's write lock.
    """
    session.flush()
    if session.get_bind().dialect.name == "sqlite":
        session.refresh(conversation, attribute_names=["language"])
    first = not conversations.language_decided(session=session, conversation_id=conversation.id,
                                               before_id=msg.id)
    detection = languages.detect(msg.text)
    chosen = languages.decide(detection, current=conversation.language, hint=declared_language,
                              first=first)
    msg.language = chosen
    if chosen != conversation.language:
        log.info("conversation %s: language %s -> %s", conversation.id, conversation.language,
                 chosen)
        conversation.language = chosen
    return chosen


def pending_turns(
    session: Session, *, conversation_id: int
) -> tuple[ConversationRef | None, list[PendingTurn]]:
    """The conversation and its fan messages still waiting for the bot, oldest first."""
    conversation = conversations.get(session=session, conversation_id=conversation_id)
    if conversation is None:
        return None, []
    rows = conversations.pending_relay(session=session, conversation_id=conversation_id)
    if conversation.status != ConversationStatus.bot and rows:
        # A person took the thread while these waited: Rasa receives nothing.
        for row in rows:
            row.relay_status = RelayStatus.held
        session.commit()
        return ConversationRef.of(conversation), []
    return ConversationRef.of(conversation), [_pending(r) for r in rows]


def _pending(row: Message, *, claimed: bool = False,
             history: tuple[HistoryTurn, ...] = ()) -> PendingTurn:
    return PendingTurn(row.id, row.uid, row.text or "", row.relay_attempts, row.next_relay_at,
                       claimed, history, row.language, is_command(row))


def is_command(row: Message) -> bool:
    """Whether a stored fan message is a pressed button's payload (see :func:`command_of`)."""
    return isinstance(row.payload, dict) and "command" in row.payload


def fan_history(session: Session, *, conversation_id: int, before_id: int,
                limit: int = 5) -> tuple[HistoryTurn, ...]:
    """The fan's last ``limit`` text messages before ``before_id`` that were the bot's to
    handle, oldest first (messages a person received while owning the thread are theirs: a fan
    asking the bot again after a handback is not repeating themselves)."""
    rows = session.execute(
        select(Message.text, Message.parse, Message.negative)
        .where(Message.conversation_id == conversation_id, Message.kind == MessageKind.incoming,
               Message.sender_type == SenderType.fan, Message.id < before_id,
               Message.text.is_not(None),
               Message.relay_status.in_([RelayStatus.answered, RelayStatus.pending,
                                         RelayStatus.skipped]))
        .order_by(Message.id.desc())
        .limit(limit)
    ).all()
    return tuple(HistoryTurn(t, p, n) for t, p, n in reversed(rows))


def claim_next_turn(
    session: Session, *, conversation_id: int, member: Member, history: int = 5
) -> tuple[ConversationRef | None, PendingTurn | None]:
    """Claim the conversation's oldest message waiting for the bot for this replica, in one
    unit of work (the first commit of a turn).

    The claim is one conditional update: it succeeds only while the message is still pending,
    its counted attempts are what was read, and no other live replica holds it, so a turn
    reaches Rasa from one replica once. Only the oldest pending message is ever claimed: a
    later one never starts while an earlier one is someone else's. None for the turn: nothing
    pending, or another live replica holds it (it carries on with the conversation).

    A first attempt that is due has its attempt counted in the same update (committed before
    Rasa is called, as :func:`mark_attempt` does). A retry, or a turn taken over from a replica
    that died mid-turn, is claimed with its attempts unchanged and returned unclaimed: the
    relay looks in Rasa's tracker first, since the earlier attempt may have run.
    """
    conversation, rows = pending_turns(session, conversation_id=conversation_id)
    if conversation is None or not rows:
        return conversation, None
    head = rows[0]
    past = fan_history(session, conversation_id=conversation_id, before_id=head.id,
                       limit=history) if history else ()
    if head.next_relay_at is not None and head.next_relay_at > utcnow():
        return conversation, replace(head, history=past)  # not due: nothing claimed
    first = head.attempts == 0
    claimed = session.execute(
        update(Message)
        .where(Message.id == head.id, Message.relay_status == RelayStatus.pending,
               Message.relay_attempts == head.attempts,
               cluster.claim_free(Message.relay_claimed_by, member))
        .values(relay_claimed_by=member.replica_id,
                relay_attempts=Message.relay_attempts + (1 if first else 0))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if not claimed:
        return conversation, None
    if first:
        return conversation, replace(head, attempts=1, claimed=True, history=past)
    return conversation, replace(head, history=past)


def mark_attempt(session: Session, *, message_id: int, attempts: int) -> bool:
    """Count an attempt before calling Rasa (a crash mid-call leads to a tracker check); False
    when the count moved since it was read (someone else is running the turn)."""
    counted = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.relay_status == RelayStatus.pending,
               Message.relay_attempts == attempts)
        .values(relay_attempts=attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return bool(counted)


def record_failure(
    session: Session, *, message_id: int, error: str, retry_in_s: float, holding: bool
) -> list[OutgoingRef]:
    """Keep the message for a retry; on its first failure give the fan the holding reply."""
    msg = session.get(Message, message_id)
    conversation = msg.conversation
    msg.relay_error = error[:200]
    msg.next_relay_at = utcnow() + dt.timedelta(seconds=retry_in_s)
    msg.relay_claimed_by = None  # the retry is any replica's
    replies: list[Message] = []
    if holding:
        replies.append(
            conversations.add_reply(
                session=session, conversation=conversation, sender_type=SenderType.system,
                text=localized(HOLDING_REPLY, conversation.language), reply_to_id=msg.id,
                payload={"holding": True},
            )
        )
    publish_on_commit(
        session,
        Event("relay.failed", conversation.id, {"message_id": msg.id, "error": error,
                                                "attempts": msg.relay_attempts}),
    )
    session.commit()
    return [out_ref(r) for r in replies]


def _button_payload(buttons) -> list[dict[str, Any]]:
    return [{"title": b.title, "payload": b.payload or b.title} for b in buttons]


def _hand_off(
    session: Session, conversation: Conversation, msg: Message, decision: dict[str, Any],
    desk: Desk,
) -> handoff.Routed | None:
    if not decision.get("handoff") or conversation.status != ConversationStatus.bot:
        return None
    handoff.apply_decision(session=session, conversation=conversation,
                           decision=_decided_language(decision, msg, conversation),
                           message_id=msg.id)
    routed = handoff.route(session=session, conversation=conversation, desk=desk,
                           actor="triage", reason=", ".join(decision.get("triggers") or [])
                           or "handoff", reply_to_id=msg.id)
    log.info("conversation %s handed off: %s (triggers %s)", conversation.id,
             routed.status.value, ",".join(decision.get("triggers") or []))
    return routed


def _decided_language(decision: dict[str, Any], msg: Message,
                      conversation: Conversation) -> dict[str, Any]:
    """Routing goes by the language decided when the message was stored, not by triage's own
    guess (one decision per message)."""
    language = msg.language or conversation.language
    return {**decision, "language": language} if language else decision


def held_message(session: Session, *, message_id: int, history: int = 5) -> tuple[
        str, tuple[HistoryTurn, ...]]:
    """A held message's text and the fan's history before it, for triage."""
    msg = session.get(Message, message_id)
    past = fan_history(session, conversation_id=msg.conversation_id, before_id=msg.id,
                       limit=history) if history else ()
    return msg.text or "", past


def escalate_held(
    session: Session, *, message_id: int, negative: float | None,
    decision: dict[str, Any] | None, desk: Desk,
) -> StoredTurn:
    """A message for the person who owns the thread: keep its score; when it is a safety
    matter and the thread was not urgent, re-route it as urgent (to the person already there
    when they suit it best: they are told by an event; otherwise the fan is told who takes
    over)."""
    msg = session.get(Message, message_id)
    msg.negative = negative
    conversation = msg.conversation
    routed = None
    if (decision and decision.get("handoff") and "safety" in (decision.get("triggers") or [])
            and conversation.status in (ConversationStatus.queued, ConversationStatus.assigned)
            and conversation.priority != Priority.urgent):
        current = conversation.assignee_id
        handoff.apply_decision(session=session, conversation=conversation,
                               decision=_decided_language(decision, msg, conversation),
                               message_id=msg.id)
        routed = handoff.route(session=session, conversation=conversation, desk=desk,
                               actor="triage", reason="safety while waiting for a person",
                               reply_to_id=msg.id, keep_assignee=True)
        if current is not None and routed.assignee_id == current:
            publish_on_commit(session, Event("conversation.escalated", conversation.id,
                                             {"staff_id": current,
                                              "topic": conversation.topic}))
        log.info("conversation %s escalated to urgent (%s)", conversation.id,
                 routed.status.value)
    session.commit()
    replies = [out_ref(routed.reply)] if routed and routed.reply else []
    return StoredTurn(replies, False, routed.alert if routed else None,
                      routed.handoff if routed else None)


def safety_turn(
    session: Session, *, message_id: int, negative: float | None, decision: dict[str, Any],
    desk: Desk,
) -> StoredTurn:
    """A safety match: the bot never sees the message; a person is found at once."""
    msg = session.get(Message, message_id)
    if msg.relay_status != RelayStatus.pending:
        return StoredTurn([], True)
    conversation = msg.conversation
    msg.relay_status = RelayStatus.skipped
    msg.relay_error = None
    msg.next_relay_at = None
    msg.negative = negative
    routed = _hand_off(session, conversation, msg, decision, desk)
    session.commit()
    replies = [out_ref(routed.reply)] if routed and routed.reply else []
    return StoredTurn(replies, False, routed.alert if routed else None,
                      routed.handoff if routed else None)


def store_turn(
    session: Session, *, message_id: int, turn: BotTurn, negative: float | None = None,
    decision: dict[str, Any] | None = None, desk: Desk | None = None, collect: bool = False,
) -> StoredTurn:
    """Store a bot turn: replies for the fan, custom items acted on (never shown), and when
    triage says so, the handoff (its text after the bot's, in the same reply).

    ``collect``: a pull channel's request (REST) is waiting for this turn: the conversation's
    replies not collected yet, this turn's with them, are marked sent in the same commit and
    returned (``StoredTurn.collected``; what :func:`take_undelivered` would hand out next)."""
    msg = session.get(Message, message_id, options=[joinedload(Message.conversation)])
    if msg.relay_status != RelayStatus.pending:
        return StoredTurn([], True)
    conversation = msg.conversation
    # Read before this turn's replies are added (they are stored as sent, not updated after).
    uncollected = (conversations.undelivered_replies(session=session,
                                                      conversation_id=conversation.id)
                   if collect else [])
    msg.negative = negative
    msg.relay_status = RelayStatus.answered
    msg.relay_error = None
    msg.next_relay_at = None
    if turn.parse is not None:
        msg.parse = turn.parse.model_dump(mode="json")
        if turn.parse.intent is not None:
            msg.intent = (turn.parse.intent.name or "")[:100] or None
            msg.intent_confidence = turn.parse.intent.confidence
    replies: list[Message] = []
    handing_off = bool(decision and decision.get("handoff"))
    bot_lost = msg.intent in NOT_UNDERSTOOD
    # Triage read the message as an emergency or as one for a person (grief, money gone
    # wrong, ...) while the bot answered: the bot's routine answer (a refund policy to a
    # bereaved fan, opening hours to someone whose friend collapsed) would only hurt.
    first_trigger = ((decision or {}).get("triggers") or [None])[0]
    person_first = handing_off and (bool(decision.get("care"))
                                    or first_trigger in ("needs_person", "safety", "maybe_urgent"))
    for item in turn.messages:
        if item.custom is not None:
            _act_on_custom(session, conversation, msg, item.custom)
        if handing_off and (item.buttons or bot_lost or person_first):
            # The bot's offer ("Shall I get a person?") is settled by the handoff itself, and
            # "sorry, I didn't get that" has nothing to add to it.
            continue
        payload: dict[str, Any] = {}
        if item.buttons:
            payload["buttons"] = _button_payload(item.buttons)
        if item.image:
            payload["image"] = item.image
        if item.text or payload:
            replies.append(
                conversations.add_reply(
                    session=session, conversation=conversation, sender_type=SenderType.bot,
                    text=item.text, payload=payload, reply_to_id=msg.id,
                    delivery_status=DeliveryStatus.sent if collect else DeliveryStatus.pending,
                )
            )
    routed = None
    if decision is not None and desk is not None:
        routed = _hand_off(session, conversation, msg, decision, desk)
        if routed is not None and routed.reply is not None:
            replies.append(routed.reply)
    publish_on_commit(
        session,
        Event("relay.answered", conversation.id,
              {"message_id": msg.id, "intent": msg.intent, "confidence": msg.intent_confidence,
               "recovered": turn.recovered}),
    )
    more = session.scalar(
        select(Message.id).where(
            Message.conversation_id == conversation.id,
            Message.relay_status == RelayStatus.pending,
            Message.id != msg.id,
        ).limit(1)
    ) is not None
    collected = None
    if collect:
        rows = [*uncollected, *replies]
        conversations.mark_delivery(
            session=session, status=DeliveryStatus.sent,
            message_ids=[r.id for r in rows if r.delivery_status != DeliveryStatus.sent],
        )
        collected = [out_ref(r) for r in sorted(rows, key=lambda r: r.id)]
    session.commit()
    return StoredTurn([out_ref(r) for r in replies], more, routed.alert if routed else None,
                      routed.handoff if routed else None, collected)


def _act_on_custom(
    session: Session, conversation: Conversation, msg: Message, custom: dict[str, Any]
) -> None:
    if isinstance(custom.get("handoff_request"), dict):
        request = {
            "topic": str(custom["handoff_request"].get("topic") or "general")[:32],
            "reason": str(custom["handoff_request"].get("reason") or "")[:500],
            "message_id": msg.id,
            "at": utcnow().isoformat(),
        }
        conversation.handoff_request = request
        conversations.add_activity(
            session=session, conversation=conversation,
            text=f"the bot asked for a person: {request['topic']}",
            data={"handoff_request": request},
        )
        publish_on_commit(
            session, Event("conversation.handoff_requested", conversation.id, request)
        )
        log.info("conversation %s: handoff requested (topic %s)", conversation.id,
                 request["topic"])
    if isinstance(custom.get("lost_property"), dict):
        report = lost_property.create_from_bot(
            session=session, conversation=conversation, report=custom["lost_property"],
            message_id=msg.id,
        )
        conversations.add_activity(
            session=session, conversation=conversation,
            text="lost-property report taken", data={"lost_property_report_id": report.id},
        )
        log.info("conversation %s: lost-property report %s", conversation.id, report.id)


def take_undelivered(session: Session, *, conversation_id: int) -> list[OutgoingRef]:
    """Hand out (and mark sent) the replies a pull channel (REST) has not collected yet."""
    rows = conversations.undelivered_replies(session=session, conversation_id=conversation_id)
    conversations.mark_delivery(
        session=session, message_ids=[r.id for r in rows], status=DeliveryStatus.sent
    )
    session.commit()
    return [out_ref(r) for r in rows]


def replay(session: Session, *, message_id: int) -> list[OutgoingRef] | None:
    """A pull channel's request (REST) for a message already stored: the message's replies
    again, whether or not an earlier response carried them (it may have been lost with its
    connection), with the replies not collected yet (marked sent), oldest first. None while
    its turn is still running (waiting for the bot, no reply yet)."""
    msg = session.get(Message, message_id)
    if msg is None:  # its conversation was deleted meanwhile
        return []
    own = conversations.replies_to(session=session, conversation_id=msg.conversation_id,
                                   message_id=message_id)
    if msg.relay_status == RelayStatus.pending and not own:
        return None
    rows = conversations.undelivered_replies(session=session,
                                             conversation_id=msg.conversation_id)
    conversations.mark_delivery(
        session=session, message_ids=[r.id for r in rows], status=DeliveryStatus.sent
    )
    session.commit()
    merged = {r.id: r for r in (*rows, *own)}
    return [out_ref(merged[i]) for i in sorted(merged)]


def set_delivery(
    session: Session, *, message_ids: list[int], status: DeliveryStatus, error: str | None = None
) -> None:
    conversations.mark_delivery(
        session=session, message_ids=message_ids, status=status, error=error
    )
    session.commit()


def due_conversations(session: Session, *, member: Member) -> list[int]:
    """Conversations whose oldest pending message ``member`` may claim now: a retry whose time
    has come, a turn whose replica died (or that this one left mid-way), or a message nobody
    claimed within ``stale_s`` of being stored (its replica died before it could). A fresh
    message is left to the replica that stored it, which is about to run it."""
    now = utcnow()
    earlier = aliased(Message)
    rows = session.scalars(
        select(Message.conversation_id).where(
            Message.relay_status == RelayStatus.pending,
            ~exists().where(earlier.conversation_id == Message.conversation_id,
                            earlier.relay_status == RelayStatus.pending,
                            earlier.id < Message.id),
            cluster.claim_free(Message.relay_claimed_by, member),
            or_(Message.next_relay_at <= now,
                and_(Message.next_relay_at.is_(None),
                     or_(Message.relay_claimed_by.is_not(None),
                         Message.created_at <= now - dt.timedelta(seconds=member.stale_s)))),
        )
    )
    return list(rows)
