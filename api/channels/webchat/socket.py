"""The rasa-webchat socket.io protocol, spoken by the switchboard itself.

``session_request {"session_id"}`` → ``session_confirm <id>`` (the socket joins a room named by
the id; an unknown id opens a conversation under it, a known one rejoins it);
``user_uttered {"message", "session_id", "customData"}`` → ``bot_uttered`` per reply.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import socketio

from api import flows
from api.channels.common import BadMessage, check_text, log_unknown_fields, signed_text
from api.conversations.language import LanguageDecider, declared
from api.db import Database
from api.enums import Channel, DeliveryStatus
from api.flows import ConversationRef, OutgoingRef
from api.relay.relay import Relay
from api.settings import Settings
from api.text import first_unstorable

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
KNOWN_UTTERED = {"message", "session_id", "customData"}

NOT_CONNECTED = {
    "en": "This chat is not connected yet. Please reload the page and try again.",
    "es": "El chat aún no está conectado. Recarga la página e inténtalo de nuevo.",
}
EMPTY = {"en": "Please type a message.", "es": "Escribe un mensaje, por favor."}
TOO_LONG = {
    "en": "That message is too long for me. Please send it in shorter parts.",
    "es": "Ese mensaje es demasiado largo. Envíalo en partes más cortas, por favor.",
}


def to_bot_uttered(message: OutgoingRef) -> list[dict[str, Any]]:
    """The rasa-webchat payloads for one outgoing message."""
    payload = message.payload or {}
    out: list[dict[str, Any]] = []
    if message.text or payload.get("buttons"):
        item: dict[str, Any] = {"text": signed_text(message.text, payload.get("sender")) or ""}
        if payload.get("buttons"):
            item["quick_replies"] = [
                {"content_type": "text", "title": b["title"],
                 "payload": b.get("payload") or b["title"]}
                for b in payload["buttons"]
            ]
        if payload.get("handoff"):
            item["metadata"] = {"handoff": payload["handoff"]}
        elif payload.get("sender"):
            sender = payload["sender"]
            item["metadata"] = {"sender": {"name": sender.get("name"),
                                           "title": sender.get("title")}}
        out.append(item)
    if payload.get("image"):
        out.append({"attachment": {"type": "image", "payload": {"src": payload["image"]}}})
    return out


class WebchatChannel:
    """socket.io server (python-socketio) plus the deliverer for web chat conversations."""

    def __init__(self, *, db: Database, relay: Relay, settings: Settings,
                 languages: LanguageDecider | None = None) -> None:
        self.db = db
        self.relay = relay
        self.settings = settings
        self.languages = languages
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=[],  # same origin only: the fan page is served by us
            logger=False,
            engineio_logger=False,
            max_http_buffer_size=settings.max_body_bytes,
        )
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("session_request", self.on_session_request)
        self.sio.on("user_uttered", self.on_user_uttered)
        relay.deliverers[Channel.webchat] = self

    def asgi_app(self) -> socketio.ASGIApp:
        return socketio.ASGIApp(self.sio, socketio_path=None)

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        log.debug("webchat connect %s", sid)
        return True

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        log.debug("webchat disconnect %s", sid)

    async def on_session_request(self, sid: str, data: Any = None) -> None:
        requested = data.get("session_id") if isinstance(data, dict) else None
        if isinstance(requested, str) and SESSION_ID.match(requested):
            session_id = requested
        else:
            session_id = uuid.uuid4().hex
        language = None  # the browser's: for the greeting, until the fan's words decide
        if isinstance(data, dict) and isinstance(data.get("customData"), dict):
            language = declared(data["customData"].get("language"))
        conv = await self.db.run(
            flows.open_session, channel=Channel.webchat, external_id=session_id,
            declared_language=language,
        )
        await self.sio.enter_room(sid, session_id)
        await self.sio.save_session(sid, {"session_id": session_id, "conversation_id": conv.id})
        await self.sio.emit("session_confirm", session_id, to=sid)
        log.info("webchat session confirmed for conversation %s", conv.id)

    async def _tell(self, sid: str, table: dict[str, str], language: str | None, code: str) -> None:
        await self.sio.emit(
            "bot_uttered",
            {"text": flows.localized(table, language), "metadata": {"error": code}},
            to=sid,
        )

    async def on_user_uttered(self, sid: str, data: Any = None) -> None:
        session = await self.sio.get_session(sid)
        data = data if isinstance(data, dict) else {}
        log_unknown_fields("webchat", data, KNOWN_UTTERED)
        custom = data.get("customData") if isinstance(data.get("customData"), dict) else {}
        language = declared(custom.get("language"))  # a hint (the browser's locale)
        session_id = session.get("session_id")
        if not session_id or data.get("session_id") not in (None, session_id):
            log.info("webchat user_uttered without a confirmed session (%s)", sid)
            await self._tell(sid, NOT_CONNECTED, language, "session_not_confirmed")
            return
        try:
            text = check_text(data.get("message"), max_chars=self.settings.max_message_chars)
            # message ids and custom data are stored or compared: refuse what the database cannot
            # hold (NUL, lone surrogates) as a bad message, not a failed handler
            if bad := first_unstorable(data):
                raise BadMessage(bad)
        except BadMessage as exc:
            reason = str(exc)
            table = TOO_LONG if "longer" in reason else EMPTY
            log.info("webchat message refused for session of conversation %s: %s",
                     session.get("conversation_id"), reason)
            await self._tell(sid, table, language, "bad_message")
            return
        client_id = data.get("message_id") or custom.get("message_id")
        received = await self.db.run(
            flows.receive_fan_message,
            channel=Channel.webchat,
            external_id=session_id,
            text=text,
            channel_message_id=str(client_id)[:255] if client_id else None,
            declared_language=language,
            languages=self.languages,
            dedup_window_s=0 if client_id else self.settings.webchat_dedup_s,
        )
        if received.replies:
            await self.deliver(conversation=received.conversation, messages=received.replies)
        if received.relay:
            await self.relay.process(received.conversation.id)
        elif received.held and self.relay.handoff is not None:
            await self.relay.handoff.on_held(received.conversation, received.message_id)

    # -- Deliverer --------------------------------------------------------------------------
    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        for message in messages:
            for payload in to_bot_uttered(message):
                await self.sio.emit("bot_uttered", payload, room=conversation.external_id)
        await self.db.run(
            flows.set_delivery, message_ids=[m.id for m in messages], status=DeliveryStatus.sent
        )

    async def typing(self, *, conversation: ConversationRef) -> None:
        return None
