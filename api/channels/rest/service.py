"""What a REST request answers with: the replies the fan has not collected yet, and for a resend
of a stored message (same ``metadata.message_id``) that message's replies again.

A client whose connection was lost mid-request (its replica killed, a network drop) cannot know
whether its message was taken; it sends it again with the same id. The resend is not stored
twice (api/intake.py) and gets the message's replies, waiting for its turn when it is still
running — whichever replica runs it — so across its requests the client gets one bot answer.
The lost response may also have carried earlier messages' late replies (an answer that came after
its request had given up waiting, marked sent when handed out): a resend carries them again.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api import flows
from api.conversations.models import Message
from api.db import Database
from api.enums import DeliveryStatus, MessageKind
from api.flows import OutgoingRef, Received

# How often a resend looks again for its message's turn (doubling up to the cap).
FIRST_LOOK_S = 0.02
LOOK_CAP_S = 0.25


async def replies_for(db: Database, received: Received, *, wait_s: float) -> list[OutgoingRef]:
    """The reply list for a REST request: replies not collected yet (marked sent), oldest
    first; for a resend, its message's replies too, once its turn has run (up to ``wait_s``:
    after that the replies not collected yet, and the turn's reply leads a later request)."""
    conversation_id = received.conversation.id
    if received.duplicate_of is None:
        # Its own replies too: a resend racing this request may have collected them first.
        own = (await db.run(flows.replay, message_id=received.message_id)
               if received.message_id is not None else None)
        if own is not None:
            return own
        return await db.run(flows.take_undelivered, conversation_id=conversation_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    pause = FIRST_LOOK_S
    while True:
        replies = await db.run(flows.replay, message_id=received.duplicate_of)
        if replies is not None:
            taken = await db.run(handed_out_since, message_id=received.duplicate_of)
            merged = {r.id: r for r in (*taken, *replies)}
            return [merged[i] for i in sorted(merged)]
        left = deadline - loop.time()
        if left <= 0:
            return await db.run(flows.take_undelivered, conversation_id=conversation_id)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, LOOK_CAP_S)


def handed_out_since(session: Session, *, message_id: int) -> list[OutgoingRef]:
    """Replies to the conversation's earlier messages (or to none) stored after this message and
    already handed out. Only a request made since this message arrived can have taken them: its
    own, whose response the client never got, since a client resends a message only then (and
    sends its next one after this one's answer). Handed out again rather than lost with it."""
    msg = session.get(Message, message_id)
    if msg is None:
        return []
    rows = session.scalars(
        select(Message)
        .where(Message.conversation_id == msg.conversation_id,
               Message.kind == MessageKind.outgoing, Message.id > msg.id,
               Message.delivery_status == DeliveryStatus.sent,
               or_(Message.reply_to_id.is_(None), Message.reply_to_id < msg.id))
        .order_by(Message.id)
    )
    return [flows.out_ref(m) for m in rows]
