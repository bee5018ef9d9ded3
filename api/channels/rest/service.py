"""What a REST request answers with: the replies the fan has not collected yet, and for a resend
of a stored message (same ``metadata.message_id``) that message's replies again.

A client whose connection was lost mid-request (its replica killed, a network drop) cannot know
whether its message was taken; it sends it again with the same id. The resend is not stored
twice (api/intake.py) and gets the message's replies, waiting for its turn when it is still
running — whichever replica runs it — so across its requests the client gets one bot answer.
"""

from __future__ import annotations

import asyncio

from api import flows
from api.db import Database
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
            return replies
        left = deadline - loop.time()
        if left <= 0:
            return await db.run(flows.take_undelivered, conversation_id=conversation_id)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, LOOK_CAP_S)
