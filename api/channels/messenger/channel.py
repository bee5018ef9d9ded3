"""The Messenger deliverer: replies go out through the Send API, recorded in the outbox."""

from __future__ import annotations

import logging

from api.channels.common import signed_text
from api.channels.messenger import service
from api.channels.messenger.send_api import SendApiClient, SendError, message_bodies
from api.db import Database
from api.enums import Channel
from api.flows import ConversationRef, OutgoingRef
from api.metrics.metrics import Metrics
from api.relay.relay import Relay
from api.settings import Settings

log = logging.getLogger(__name__)


class MessengerChannel:
    def __init__(self, *, db: Database, relay: Relay, client: SendApiClient,
                 settings: Settings, metrics: Metrics | None = None) -> None:
        self.db = db
        self.client = client
        self.settings = settings
        self.metrics = metrics or Metrics()
        relay.deliverers[Channel.messenger] = self
        relay.on_idle.append(self.sweep)

    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        psid = conversation.external_id
        for message in messages:
            payload = message.payload or {}
            window = payload.get("messenger") or {}
            persona_id = None
            if payload.get("sender") and self.settings.messenger_personas:
                persona_id = await self._persona(payload["sender"])
            text = message.text if persona_id else signed_text(message.text, payload.get("sender"))
            bodies = message_bodies(
                psid=psid, text=text, buttons=payload.get("buttons"),
                image=payload.get("image"),
                metadata=service.OUR_METADATA_PREFIX + message.uid,
                messaging_type=window.get("messaging_type", "RESPONSE"), tag=window.get("tag"),
                persona_id=persona_id,
            )
            ids = await self.db.run(service.enqueue_sends, message_id=message.id, psid=psid,
                                    bodies=bodies)
            for outbox_id, body in zip(ids, bodies, strict=True):
                if not await self._send(outbox_id, body):
                    break  # do not send the rest of a reply whose first part failed

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

    async def _send(self, outbox_id: int, body: dict) -> bool:
        try:
            result = await self.client.post(body)
        except SendError as exc:
            log.warning("messenger send %s failed: %s", outbox_id, exc.kind)
            self.metrics.delivery(Channel.messenger, "dead")
            await self.db.run(service.record_send, outbox_id=outbox_id, ok=False, code=exc.code,
                              subcode=exc.subcode, error=f"{exc.kind}: {exc.message}")
            return False
        await self.db.run(service.record_send, outbox_id=outbox_id, ok=True,
                          mid=str(result.get("message_id") or "") or None)
        self.metrics.delivery(Channel.messenger, "sent")
        return True

    async def typing(self, *, conversation: ConversationRef) -> None:
        try:
            await self.client.send_action(psid=conversation.external_id, action="typing_on")
        except SendError as exc:
            log.info("typing indicator not sent: %s", exc.kind)

    async def sweep(self) -> None:
        """Resend sends a crash left pending (their lease has expired)."""
        for outbox_id, _psid, body in await self.db.run(service.due_sends):
            await self.db.run(service.lease_send, outbox_id=outbox_id)
            await self._send(outbox_id, body)
