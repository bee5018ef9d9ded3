"""The Messenger sender: the outbox's rows go out through the Send API (persona, quick retries
in the client); the outbox worker owns the retries over minutes and the dead rows."""

from __future__ import annotations

import logging

from api.channels.common import signed_text
from api.channels.messenger import service
from api.channels.messenger.send_api import SendApiClient, SendError, message_bodies
from api.db import Database
from api.enums import Channel
from api.metrics.metrics import Metrics
from api.outbox.flows import Delivery
from api.outbox.worker import Failed, OutboxWorker, Outcome, Retry, Sent
from api.relay.relay import Relay
from api.settings import Settings
from api.snapshots import ConversationRef, OutgoingRef

log = logging.getLogger(__name__)


class MessengerChannel:
    def __init__(self, *, db: Database, relay: Relay, client: SendApiClient,
                 settings: Settings, outbox: OutboxWorker, metrics: Metrics | None = None) -> None:
        self.db = db
        self.client = client
        self.settings = settings
        self.outbox = outbox
        self.metrics = metrics or Metrics()
        relay.deliverers[Channel.messenger] = self
        outbox.senders[Channel.messenger] = self

    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        """The replies are in the outbox already (stored with them): send them now."""
        await self.outbox.deliver_conversation(conversation.id)

    async def send(self, delivery: Delivery) -> Outcome:
        message = delivery.message
        payload = message.payload or {}
        window = payload.get("messenger") or {}
        persona_id = None
        if payload.get("sender") and self.settings.messenger_personas:
            persona_id = await self._persona(payload["sender"])
        text = message.text if persona_id else signed_text(message.text, payload.get("sender"))
        bodies = message_bodies(
            psid=delivery.recipient, text=text, buttons=payload.get("buttons"),
            image=payload.get("image"),
            metadata=service.OUR_METADATA_PREFIX + message.uid,
            messaging_type=window.get("messaging_type", "RESPONSE"), tag=window.get("tag"),
            persona_id=persona_id,
        )
        first_mid = None
        # A retry sends only the parts the Send API has not taken yet.
        for part in range(delivery.parts_sent, len(bodies)):
            try:
                result = await self.client.post(bodies[part])
            except SendError as exc:
                log.warning("messenger send of outbox %s failed: %s", delivery.outbox_id,
                            exc.kind)
                error = f"{exc.kind}: {exc.message}"
                if exc.retryable:
                    return Retry(error, exc.code, exc.subcode, parts_sent=part, mid=first_mid)
                return Failed(error, exc.code, exc.subcode)
            first_mid = first_mid or (str(result.get("message_id") or "") or None)
        return Sent(first_mid, parts_sent=len(bodies))

    def local_recipients(self) -> frozenset[str] | None:
        return None  # any replica reaches the Send API

    async def _persona(self, sender: dict) -> str | None:
        """The staff member's persona on the Page, created on first use (None if refused)."""
        handle = sender.get("handle")
        persona_id = await self.db.run(service.persona_of, handle=handle)
        if persona_id:
            return persona_id
        try:
            persona_id = await self.client.create_persona(
                page_id=self.settings.messenger_page_id, name=str(sender.get("name") or handle),
                picture_url=self.settings.messenger_persona_picture_url,
            )
        except SendError as exc:
            log.warning("persona for staff %s not created: %s", handle, exc.kind)
            return None
        await self.db.run(service.save_persona, handle=handle, persona_id=persona_id)
        return persona_id

    async def typing(self, *, conversation: ConversationRef) -> None:
        try:
            await self.client.send_action(psid=conversation.external_id, action="typing_on")
        except SendError as exc:
            log.info("typing indicator not sent: %s", exc.kind)
