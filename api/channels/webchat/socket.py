"""The rasa-webchat socket.io protocol, spoken by the switchboard itself.

``session_request {"session_id"}`` → ``session_confirm <id>`` (the socket joins a room named by
the id and leaves the previous session's; a well-formed unknown id opens a conversation under it,
a known one rejoins it unless idle too long; otherwise the server issues a random id, which
rasa-webchat stores); ``user_uttered {"message", "session_id", "customData"}`` → ``bot_uttered``
per reply. Browsers may connect only from our own page or the brand's sites (``origin_check``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

import socketio

from api import flows
from api.channels.common import BadMessage, log_unknown_fields, signed_text
from api.conversations.language import declared
from api.db import Database
from api.enums import Channel, DeliveryStatus
from api.flows import ConversationRef, OutgoingRef
from api.intake import Incoming, Intake, RateLimited
from api.logs import bind_conversation
from api.metrics.metrics import Metrics
from api.ratelimit.address import UNKNOWN, client_address
from api.ratelimit.limiter import RateLimits, Scope, Verdict
from api.relay.relay import Relay
from api.settings import Settings

log = logging.getLogger(__name__)

# A client-chosen id is kept only when it is long enough not to be guessed or shared by accident.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")  # fullmatch: "$" would allow a final "\n"
KNOWN_UTTERED = {"message", "session_id", "customData"}

NOT_CONNECTED = {
    "en": "This chat is not connected yet. Please reload the page and try again.",
    "es": "El chat aún no está conectado. Recarga la página e inténtalo de nuevo.",
}
EMPTY = {"en": "Please type a message.", "es": "Escribe un mensaje, por favor."}
SLOW_DOWN = {
    "en": "You're sending messages faster than I can read them, so I didn't take that one. "
          "Please wait a few seconds and send it again.",
    "es": "Estás enviando mensajes más rápido de lo que puedo leerlos, así que no he recibido "
          "ese. Espera unos segundos y vuelve a enviarlo, por favor.",
}
BUSY_NETWORK = {
    "en": "A lot of people are connecting from your network right now. Please wait a few "
          "seconds and reload the page.",
    "es": "Mucha gente se está conectando desde tu red ahora mismo. Espera unos segundos y "
          "recarga la página, por favor.",
}
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


def own_origins(environ: dict) -> set[str]:
    """The origins of the page this request came from if it is ours: scheme://Host as the
    server sees it, and as a balancer forwards it (X-Forwarded-Proto/-Host, first value, as
    python-engineio reads them for ``cors_allowed_origins=None``). Trusting the forwarded
    headers is safe here: a browser cannot set them on a WebSocket handshake, and on a polling
    request they force a CORS preflight, which carries the real Host and is refused."""
    host = environ.get("HTTP_HOST")
    if not host:
        return set()
    # engine.io's ASGI environ always says "http" unless forwarded: read the real scheme.
    scheme = "https" if environ.get("asgi.scope", {}).get("scheme") in ("https", "wss") else "http"
    origins = {f"{scheme}://{host}".lower()}
    if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
        fwd_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
        fwd_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
        origins.add(f"{fwd_scheme}://{fwd_host}".lower())
    return origins


def origin_check(brand_sites: frozenset[str]) -> Callable[[str | None, dict], bool]:
    """python-engineio's ``cors_allowed_origins`` callable: a browser's Origin must be our own
    page's or one of the brand's sites. Requests without an Origin (not browsers) pass: the
    check exists against other web pages driving a fan's browser."""

    def allowed_origin(origin: str | None, environ: dict) -> bool:
        if not origin:
            return True
        origin = origin.rstrip("/").lower()
        return origin in brand_sites or origin in own_origins(environ)

    return allowed_origin


class WebchatChannel:
    """socket.io server (python-socketio) plus the deliverer for web chat conversations."""

    def __init__(self, *, db: Database, relay: Relay, settings: Settings, intake: Intake,
                 ratelimits: RateLimits | None = None, metrics: Metrics | None = None,
                 client_manager: socketio.AsyncManager | None = None) -> None:
        """``client_manager``: socket.io's rooms across replicas (api.main.socketio_manager:
        the Redis manager when REDIS_URL is set); None keeps them in this process."""
        self.db = db
        self.relay = relay
        self.settings = settings
        self.intake = intake  # fan messages come in through it (api/intake.py)
        self.ratelimits = ratelimits
        self.metrics = metrics or Metrics()
        # Per socket: its client address, and whether its next message is the first since its
        # session_request (that one is paid for by the session_request limit, not the address's:
        # a new fan behind a flooded venue address still gets their first, maybe urgent, message
        # through).
        self.addresses: dict[str, str] = {}
        self.first_message: set[str] = set()
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=origin_check(settings.webchat_origins),
            logger=False,
            engineio_logger=False,
            # Polling bodies and WebSocket messages (uvicorn's ws_max_size caps frames too).
            max_http_buffer_size=settings.websocket_max_bytes,
            client_manager=client_manager,
        )
        self.idle_limit = dt.timedelta(days=settings.webchat_session_idle_days)
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("session_request", self.on_session_request)
        self.sio.on("user_uttered", self.on_user_uttered)
        relay.deliverers[Channel.webchat] = self

    @property
    def connections(self) -> int:
        """Sockets connected to this process."""
        return len(self.addresses)

    def asgi_app(self) -> socketio.ASGIApp:
        return socketio.ASGIApp(self.sio, socketio_path=None)

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        log.debug("webchat connect %s", sid)
        self.addresses[sid] = client_address(environ, self.settings)
        return True

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        log.debug("webchat disconnect %s", sid)
        self.addresses.pop(sid, None)
        self.first_message.discard(sid)

    async def _limited(self, sid: str, language: str | None, table: dict[str, str],
                       *steps: tuple[Scope, str]) -> bool:
        """Count the event against the limits; when refused, tell the fan politely (nothing of
        the event is stored or acted on) and return True."""
        if self.ratelimits is None:
            return False
        verdict = await self.ratelimits.check(self.addresses.get(sid, UNKNOWN), *steps)
        if verdict.allowed:
            return False
        await self._tell_limited(sid, language, table, verdict)
        return True

    async def _tell_limited(self, sid: str, language: str | None, table: dict[str, str],
                            verdict: Verdict) -> None:
        await self.sio.emit(
            "bot_uttered",
            {"text": flows.localized(table, language),
             "metadata": {"error": "rate_limited", "retry_after": verdict.retry_after}},
            to=sid,
        )

    async def on_session_request(self, sid: str, data: Any = None) -> None:
        requested = data.get("session_id") if isinstance(data, dict) else None
        if not (isinstance(requested, str) and SESSION_ID.fullmatch(requested)):
            requested = None  # the server issues one
        language = None  # the browser's: for the greeting, until the fan's words decide
        if isinstance(data, dict) and isinstance(data.get("customData"), dict):
            language = declared(data["customData"].get("language"))
        address = self.addresses.get(sid, UNKNOWN)
        if await self._limited(sid, language, BUSY_NETWORK, (Scope.session_request, address)):
            return
        conv = await self.db.run(
            flows.open_webchat_session, requested_id=requested, idle_limit=self.idle_limit,
            declared_language=language,
        )
        session_id = conv.external_id
        # One session per socket: replies for a session it asked for before must not reach it.
        for room in self.sio.rooms(sid):
            if room not in (sid, session_id):
                await self.sio.leave_room(sid, room)
        await self.sio.enter_room(sid, session_id)
        await self.sio.save_session(sid, {"session_id": session_id, "conversation_id": conv.id})
        bind_conversation(conv.id)
        self.first_message.add(sid)
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
        bind_conversation(session.get("conversation_id"))
        if not session_id or data.get("session_id") not in (None, session_id):
            log.info("webchat user_uttered without a confirmed session (%s)", sid)
            await self._tell(sid, NOT_CONNECTED, language, "session_not_confirmed")
            return
        address = self.addresses.get(sid, UNKNOWN)
        steps = [(Scope.sender, f"webchat:{session_id}")]
        if sid not in self.first_message:
            steps.append((Scope.address, address))
        message = data.get("message")
        client_id = data.get("message_id") or custom.get("message_id")
        try:
            await self.intake.receive(
                Incoming(
                    channel=Channel.webchat,
                    external_id=session_id,
                    text=message if isinstance(message, str) else None,
                    message_id=str(client_id) if client_id else None,
                    declared_language=language,
                    dedup_window_s=self.settings.webchat_dedup_s,
                    start_commands=frozenset(self.settings.webchat_start_commands),
                    address=address,
                    limits=tuple(steps),
                    # message ids and custom data are stored or compared: refuse what the
                    # database cannot hold (NUL, lone surrogates) as a bad message
                    stored_fields=data,
                ),
                # the exemption from the address limit covers one message
                admitted=lambda: self.first_message.discard(sid),
            )
        except BadMessage as exc:
            reason = str(exc)
            table = TOO_LONG if "longer" in reason else EMPTY
            log.info("webchat message refused for session of conversation %s: %s",
                     session.get("conversation_id"), reason)
            await self._tell(sid, table, language, "bad_message")
        except RateLimited as exc:
            await self._tell_limited(sid, language, SLOW_DOWN, exc.verdict)

    # -- Deliverer --------------------------------------------------------------------------
    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        for message in messages:
            for payload in to_bot_uttered(message):
                await self.sio.emit("bot_uttered", payload, room=conversation.external_id)
        self.metrics.delivery(Channel.webchat, "sent", len(messages))
        await self.db.run(
            flows.set_delivery, message_ids=[m.id for m in messages], status=DeliveryStatus.sent
        )

    async def typing(self, *, conversation: ConversationRef) -> None:
        return None
