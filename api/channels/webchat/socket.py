"""The rasa-webchat socket.io protocol, spoken by the switchboard itself.

``session_request {"session_id"}`` → ``session_confirm <id>`` (the socket joins a room named by
the id and leaves the previous session's; a well-formed unknown id opens a conversation under it,
a known one rejoins it unless idle too long; otherwise the server issues a random id, which
rasa-webchat stores); ``user_uttered {"message", "session_id", "customData"}`` → ``bot_uttered``
per reply. Browsers may connect only from our own page or the brand's sites (``origin_check``).

Delivery (api/outbox): the widget never acknowledges ``bot_uttered``, so a reply counts as
delivered when it was emitted to a socket of the fan's session that was connected then and is
still connected at the next engine.io ping. That ping is sent right after the reply, so its pong
proves it within a round trip (api/channels/webchat/pongs.py). Without a pong, engine.io closes
a socket from which nothing arrived for ping interval + time-out, so a socket still open that
long after the emit answered a ping sent after it (:meth:`WebchatChannel._prove`).

A socket the page itself closed (a reload, a closed tab: the transport closed with no ping
overdue) a second or more after the emit counts too: it was working well past the reply, which
the widget has shown and stored, so a reload replays nothing already shown. A reply whose
sockets all dropped first, or stored while none was connected, waits and is sent, in order, at
the session's next ``session_request`` (the widget sends one on every reconnect).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import socketio

from api import flows
from api.channels.common import BadMessage, log_unknown_fields, signed_text
from api.channels.webchat.pongs import PongWatch
from api.conversations.language import declared
from api.db import Database
from api.enums import Channel
from api.intake import Incoming, Intake, RateLimited
from api.logs import bind_conversation, bind_request
from api.metrics.metrics import Metrics
from api.outbox.flows import Delivery
from api.outbox.worker import Emitted, NoSocket, OutboxWorker, Outcome
from api.ratelimit.address import UNKNOWN, client_address
from api.ratelimit.limiter import RateLimits, Scope, Verdict
from api.relay.relay import Relay
from api.settings import Settings
from api.snapshots import ConversationRef, OutgoingRef

log = logging.getLogger(__name__)

# Slack past engine.io's ping interval + time-out before a still-open socket counts as proof;
# also how long before a clean close an emit must have been to count as shown.
PROOF_MARGIN_S = 1.0
# How long a message waits for its socket's session_request under way (see on_user_uttered).
SESSION_WAIT_S = 10.0
# Why a socket closed, as python-socketio says: the client's own doing (not a ping time-out).
CLEAN_CLOSE = frozenset({socketio.AsyncServer.reason.CLIENT_DISCONNECT,
                         socketio.AsyncServer.reason.TRANSPORT_CLOSE})

# A client-chosen id is kept only when it is long enough not to be guessed or shared by accident.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")  # fullmatch: "$" would allow a final "\n"
KNOWN_UTTERED = {"message", "session_id", "customData", "message_id"}

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
                 outbox: OutboxWorker, ratelimits: RateLimits | None = None,
                 metrics: Metrics | None = None,
                 client_manager: socketio.AsyncManager | None = None) -> None:
        """``client_manager``: socket.io's rooms across replicas (api.main.socketio_manager:
        the Redis manager when REDIS_URL is set); None keeps them in this process."""
        self.db = db
        self.relay = relay
        self.outbox = outbox
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
        # Per socket, the session it confirmed; per emitted outbox row awaiting its proof, the
        # sockets it was emitted to and its conversation.
        self.sessions: dict[str, str] = {}
        self.unproven: dict[int, tuple[int, set[str], float]] = {}
        self.transports: dict[str, Any] = {}  # per socket, its engine.io socket (its pings)
        self.pongs = PongWatch()
        # Per socket, its session_request under way: set once the session is confirmed.
        self.confirming: dict[str, asyncio.Event] = {}
        self._proofs: set[asyncio.Task] = set()
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=origin_check(settings.webchat_origins),
            logger=False,
            engineio_logger=False,
            # Polling bodies and WebSocket messages (uvicorn's ws_max_size caps frames too).
            max_http_buffer_size=settings.websocket_max_bytes,
            client_manager=client_manager,
            ping_interval=settings.webchat_ping_interval_s,
            ping_timeout=settings.webchat_ping_timeout_s,
        )
        self.idle_limit = dt.timedelta(days=settings.webchat_session_idle_days)
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("session_request", self.on_session_request)
        self.sio.on("user_uttered", self.on_user_uttered)
        relay.deliverers[Channel.webchat] = self
        outbox.senders[Channel.webchat] = self

    @property
    def connections(self) -> int:
        """Sockets connected to this process."""
        return len(self.addresses)

    def asgi_app(self) -> socketio.ASGIApp:
        return socketio.ASGIApp(self.sio, socketio_path=None)

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        log.debug("webchat connect %s", sid)
        self.addresses[sid] = client_address(environ, self.settings)
        transport = self.sio.eio.sockets.get(self.sio.manager.eio_sid_from_sid(sid, "/"))
        self.transports[sid] = transport
        if transport is not None:
            self.pongs.watch(sid, transport)
        return True

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        log.debug("webchat disconnect %s", sid)
        self.addresses.pop(sid, None)
        self.first_message.discard(sid)
        self.sessions.pop(sid, None)
        self.confirming.pop(sid, None)
        transport = self.transports.pop(sid, None)
        self.pongs.forget(sid)
        await self._dropped(sid, clean=bool(args) and args[0] in CLEAN_CLOSE
                            and not _ping_overdue(transport))

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
        # Registered before the first await: a message the client sent after this request is
        # handled after it (see on_user_uttered).
        confirming = self.confirming[sid] = asyncio.Event()
        try:
            conv = await self._confirm_session(sid, data)
        finally:
            confirming.set()
            if self.confirming.get(sid) is confirming:
                del self.confirming[sid]
        if conv is not None:
            # Replies that waited for a socket of this session (or lost theirs) go out now, in
            # order.
            await self.outbox.deliver_conversation(conv.id)

    async def _confirm_session(self, sid: str, data: Any) -> ConversationRef | None:
        """Join the requested (or a new) session and confirm it; None when refused."""
        requested = data.get("session_id") if isinstance(data, dict) else None
        if not (isinstance(requested, str) and SESSION_ID.fullmatch(requested)):
            requested = None  # the server issues one
        language = None  # the browser's: for the greeting, until the fan's words decide
        if isinstance(data, dict) and isinstance(data.get("customData"), dict):
            language = declared(data["customData"].get("language"))
        address = self.addresses.get(sid, UNKNOWN)
        if await self._limited(sid, language, BUSY_NETWORK, (Scope.session_request, address)):
            return None
        conv = await self.db.run(
            flows.open_webchat_session, requested_id=requested, idle_limit=self.idle_limit,
            declared_language=language,
        )
        session_id = conv.external_id
        # One session per socket: replies for a session it asked for before must not reach it.
        for room in self.sio.rooms(sid):
            if room not in (sid, session_id):
                await self.sio.leave_room(sid, room)
        if self.sessions.get(sid) not in (None, session_id):
            await self._dropped(sid)  # what the previous session's replies reached is unproven
        await self.sio.enter_room(sid, session_id)
        self.sessions[sid] = session_id
        await self.sio.save_session(sid, {"session_id": session_id, "conversation_id": conv.id})
        bind_conversation(conv.id)
        self.first_message.add(sid)
        await self.sio.emit("session_confirm", session_id, to=sid)
        log.info("webchat session confirmed for conversation %s", conv.id)
        return conv

    async def _tell(self, sid: str, table: dict[str, str], language: str | None, code: str) -> None:
        await self.sio.emit(
            "bot_uttered",
            {"text": flows.localized(table, language), "metadata": {"error": code}},
            to=sid,
        )

    async def on_user_uttered(self, sid: str, data: Any = None) -> None:
        # socket.io-client sends what the fan wrote while it was reconnecting right after the
        # session_request of its connect handler, and python-socketio handles both at once:
        # the message waits for that session to be confirmed instead of being refused.
        confirming = self.confirming.get(sid)
        if confirming is not None:
            try:
                await asyncio.wait_for(confirming.wait(), SESSION_WAIT_S)
            except TimeoutError:
                pass  # refused below as unconfirmed, as without a session_request
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

    # -- Deliverer and outbox sender ----------------------------------------------------------
    async def deliver(self, *, conversation: ConversationRef, messages: list[OutgoingRef]) -> None:
        """The replies are in the outbox already (stored with them): send them now."""
        await self.outbox.deliver_conversation(conversation.id)

    async def typing(self, *, conversation: ConversationRef) -> None:
        return None

    def local_recipients(self) -> frozenset[str]:
        """Sessions with a socket on this process: only here can their replies be proven."""
        return frozenset(self.sessions.values())

    async def send(self, delivery: Delivery) -> Outcome:
        sids = {sid for sid, session in self.sessions.items() if session == delivery.recipient}
        if not sids:
            return NoSocket()
        for payload in to_bot_uttered(delivery.message):
            for sid in sorted(sids):
                await self.sio.emit("bot_uttered", payload, to=sid)
        answered = await self.pongs.probe(sids, self.transports)
        window = self.settings.webchat_ping_interval_s + self.settings.webchat_ping_timeout_s
        self.unproven[delivery.outbox_id] = (delivery.conversation_id, sids, time.monotonic())
        task = asyncio.create_task(self._prove(delivery.outbox_id, window + PROOF_MARGIN_S,
                                               answered))
        self._proofs.add(task)
        task.add_done_callback(self._proofs.discard)
        # Held past the proof: a worker elsewhere takes it over only if this process died.
        return Emitted(hold_s=2 * window + PROOF_MARGIN_S)

    async def _prove(self, outbox_id: int, after_s: float, answered: asyncio.Future) -> None:
        """Delivered at the pong to the ping sent after it; without one, after engine.io's
        next ping has had its time, if a socket it was emitted to is still connected (a
        dropped one was handled by :meth:`_dropped`)."""
        try:
            await asyncio.wait_for(answered, after_s)
            ponged = True
        except TimeoutError:
            ponged = False
        entry = self.unproven.pop(outbox_id, None)
        if entry is None:
            return
        conversation_id, sids, _ = entry
        proven = ponged or any(sid in self.sessions for sid in sids)
        try:
            await self.outbox.prove(conversation_id, delivered=[outbox_id] if proven else [],
                                    released=[] if proven else [outbox_id])
        except Exception:  # the lease expires and the row is sent again: never lost
            log.exception("outbox %s: web chat proof not recorded", outbox_id)

    async def _dropped(self, sid: str, *, clean: bool = False) -> None:
        """A socket left its session: the rows emitted to it are delivered when the page closed
        it cleanly well after the emit; otherwise, once no socket they reached is left, they
        wait for a reconnect."""
        settled: dict[int, tuple[list[int], list[int]]] = {}
        now = time.monotonic()
        for outbox_id, (conversation_id, sids, emitted_at) in list(self.unproven.items()):
            if sid not in sids:
                continue
            delivered, released = settled.setdefault(conversation_id, ([], []))
            if clean and now - emitted_at >= PROOF_MARGIN_S:
                del self.unproven[outbox_id]
                delivered.append(outbox_id)
                continue
            sids.discard(sid)
            if not sids:
                del self.unproven[outbox_id]
                released.append(outbox_id)
        bind_request()  # a disconnect has no request: its lines get an id of their own
        for conversation_id, (delivered, released) in settled.items():
            bind_conversation(conversation_id)
            if released:
                log.info("webchat socket dropped before proof: %s replies of conversation %s "
                         "wait", len(released), conversation_id)
            await self.outbox.prove(conversation_id, delivered=delivered, released=released)

    async def close(self) -> None:
        """Stop waiting for proofs (shutdown): their rows are taken over once leases expire."""
        tasks = list(self._proofs)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _ping_overdue(transport: Any) -> bool:
    """Whether engine.io was waiting for a pong longer than a round trip when the socket
    closed (``last_ping``: when the unanswered ping went out): a dropped client, not a page
    that closed its socket."""
    last_ping = getattr(transport, "last_ping", None)
    return bool(last_ping) and time.time() - last_ping > PROOF_MARGIN_S
