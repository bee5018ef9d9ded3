"""The rasa-webchat socket.io protocol, spoken by a python-socketio client as the widget does."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import httpx
import pytest
import socketio
import websockets
from sqlalchemy import func, select

from api.channels.webchat.socket import PROOF_MARGIN_S
from api.conversations.models import ChannelIdentity, Conversation, Message
from api.db import utcnow
from api.enums import MessageKind
from tests.api.conftest import LiveServer, run_db, wait_for


class Widget:
    """Acts like rasa-webchat 1.0.1: session_request, then user_uttered; collects bot_uttered."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.uttered: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_confirm", self.confirmed.put_nowait)
        self.sio.on("bot_uttered", self.uttered.put_nowait)

    async def connect(self) -> None:
        await self.sio.connect(self.url, socketio_path="/socket.io/", transports=["websocket"],
                               headers=self.headers)

    async def session(self, session_id=None) -> str:
        await self.sio.emit("session_request", {"session_id": session_id})
        return await asyncio.wait_for(self.confirmed.get(), 5)

    async def say(self, text, session_id, **extra) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id,
                                             "customData": {"language": "en"}, **extra})

    async def next(self, timeout=5):
        return await asyncio.wait_for(self.uttered.get(), timeout)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def widget(live_server):
    w = Widget(live_server.url)
    await w.connect()
    yield w
    await w.close()


async def test_session_and_turn(widget, live_server, fake_rasa):
    sid = await widget.session(None)
    assert isinstance(sid, str) and len(sid) == 32
    await widget.say("hello", sid)
    assert await widget.next() == {"text": "echo: hello"}
    call = fake_rasa.calls[-1]
    assert call["sender"] == f"webchat-{sid}" and call["metadata"]["channel"] == "webchat"


async def test_unknown_id_opens_conversation_under_it(widget, live_server):
    sid = await widget.session("widget-picked-id-1")
    assert sid == "widget-picked-id-1"
    conv = run_db(live_server.app.state.services, lambda s: s.scalars(select(Conversation)).one())
    assert conv.identity.external_id == "widget-picked-id-1"


async def test_buttons_become_quick_replies_and_custom_hidden(widget):
    sid = await widget.session("quick-replies-session-1")
    await widget.say("buttons", sid)
    assert await widget.next() == {"text": "Pick one", "quick_replies": [
        {"content_type": "text", "title": "Tickets", "payload": "/ask_tickets"},
        {"content_type": "text", "title": "Talk to a person", "payload": "/request_human"}]}
    await widget.say("image", sid)
    assert await widget.next() == {"attachment": {"type": "image",
                                                  "payload": {"src": "https://example.org/map.png"}}}


async def test_handoff_request_shows_words_then_the_handoff(widget):
    sid = await widget.session("quick-replies-session-2")
    await widget.say("human now", sid)
    assert await widget.next() == {"text": "Let me find someone for you."}
    handoff = await widget.next()
    assert handoff["metadata"]["handoff"]["status"] == "queued"  # nobody is online
    assert set(handoff) == {"text", "metadata"} and handoff["text"]
    with pytest.raises(asyncio.TimeoutError):
        await widget.next(timeout=0.5)  # the handoff_request custom item is never shown


async def test_reload_rejoins_same_conversation(live_server):
    first = Widget(live_server.url)
    await first.connect()
    sid = await first.session(None)
    await first.say("one", sid)
    assert (await first.next())["text"] == "echo: one"
    # the fan reads it, then reloads: a reply the page had for a second counts as shown (one
    # that had no time to arrive would be sent again, test_webchat_delivery.py)
    await asyncio.sleep(PROOF_MARGIN_S + 0.1)
    await first.close()
    again = Widget(live_server.url)  # a reload: new socket, stored id replayed
    await again.connect()
    assert await again.session(sid) == sid
    await again.say("two", sid)
    assert (await again.next())["text"] == "echo: two"
    await again.close()
    n = run_db(live_server.app.state.services,
               lambda s: s.scalar(select(func.count()).select_from(Conversation)))
    assert n == 1


async def test_message_written_while_reconnecting_waits_for_its_session(live_server):
    """socket.io-client sends what the fan typed while it was reconnecting right after the
    connect handler's session_request, before session_confirm; python-socketio handles both at
    once. The message is taken once the session is confirmed, not refused as unconfirmed."""
    first = Widget(live_server.url)
    await first.connect()
    sid = await first.session("reconnecting-fan-session-1")
    await first.close()
    again = Widget(live_server.url)
    await again.connect()
    await again.sio.emit("session_request", {"session_id": sid})
    await again.say("written while offline", sid)
    assert await asyncio.wait_for(again.confirmed.get(), 5) == sid
    assert await again.next() == {"text": "echo: written while offline"}
    await again.close()


async def test_reconnect_duplicate_gives_one_turn(widget, fake_rasa):
    sid = await widget.session("duplicate-session-01")
    await widget.say("same words", sid)
    await widget.say("same words", sid)  # the widget re-sent on reconnect
    assert (await widget.next())["text"] == "echo: same words"
    with pytest.raises(asyncio.TimeoutError):
        await widget.next(timeout=0.7)
    assert fake_rasa.turns_for("webchat-duplicate-session-01") == 1


async def test_user_uttered_without_session(widget, live_server, fake_rasa):
    await widget.say("hello", "never-confirmed")
    reply = await widget.next()
    assert reply["metadata"]["error"] == "session_not_confirmed"
    assert "reload" in reply["text"]
    n = run_db(live_server.app.state.services,
               lambda s: s.scalar(select(func.count()).select_from(Message)))
    assert n == 0 and fake_rasa.calls == []


async def test_empty_and_too_long(widget, live_server, fake_rasa):
    sid = await widget.session("bad-message-session-1")
    for text in ("", "   ", "x" * 5000, None):
        await widget.say(text, sid)
        reply = await widget.next()
        assert reply["metadata"]["error"] == "bad_message"
    n = run_db(live_server.app.state.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))
    assert n == 0 and fake_rasa.calls == []


async def test_rasa_down_holding_reply_then_answer_pushed(widget, fake_rasa):
    fake_rasa.mode = "refuse"
    sid = await widget.session("rasa-down-session-01")
    await widget.say("hello", sid)
    holding = await widget.next()
    assert holding["text"].startswith("Sorry, I can't answer right now.")
    fake_rasa.mode = "ok"
    assert await widget.next(timeout=5) == {"text": "echo: hello"}


async def test_fan_page_and_assets(live_server):
    import httpx

    async with httpx.AsyncClient(base_url=live_server.url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        script_src = csp.split("script-src")[1].split(";")[0]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in script_src
        assert "style-src 'self' 'unsafe-inline'" in csp
        assert "<script>" not in page.text  # no inline scripts
        assert '/static/vendor/rasa-webchat/index.js' in page.text
        js = await client.get("/static/webchat/fan.js")
        assert "window.location.origin" in js.text
        bundle = await client.get("/static/vendor/rasa-webchat/index.js")
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
        assert "http" not in page.text.split("<body>")[1].replace("http-equiv", "")


# -- who may open a socket ----------------------------------------------------------------------
@pytest.fixture
def make_live_server(make_settings, triage_engine):
    servers: list[LiveServer] = []

    def _make(**overrides) -> LiveServer:
        servers.append(LiveServer(make_settings(**overrides), triage=triage_engine).start())
        return servers[-1]

    yield _make
    for server in servers:
        server.stop()


async def opens(url: str, headers: dict[str, str]) -> bool:
    """Whether a socket.io client sending these handshake headers gets a confirmed session."""
    widget = Widget(url, headers)
    try:
        await widget.connect()
    except socketio.exceptions.ConnectionError:
        return False
    try:
        await widget.session(None)
        return True
    finally:
        await widget.close()


async def test_foreign_browser_origin_refused(live_server):
    assert not await opens(live_server.url, {"Origin": "https://evil.example"})
    assert not await opens(live_server.url, {"Origin": "http://127.0.0.1:1"})  # another port
    # the polling transport too: no engine.io session for another site's page
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        r = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"},
                             headers={"Origin": "https://evil.example"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


async def test_own_origin_and_clients_without_origin_allowed(live_server):
    port = live_server.port
    assert await opens(live_server.url, {})  # not a browser: nothing to check
    assert await opens(live_server.url, {"Origin": f"http://127.0.0.1:{port}"})
    assert await opens(f"http://localhost:{port}", {"Origin": f"http://localhost:{port}"})
    # behind the balancer: the page is https://<the balancer's name>
    behind = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.aurora.example"}
    assert await opens(live_server.url, {**behind, "Origin": "https://chat.aurora.example"})
    assert not await opens(live_server.url, {**behind, "Origin": "https://evil.example"})


async def test_brand_sites_allowed(make_live_server):
    server = make_live_server(
        WEBCHAT_ALLOWED_ORIGINS="https://aurora.example, https://www.Aurora.example/")
    assert await opens(server.url, {"Origin": "https://www.aurora.example"})
    assert await opens(server.url, {"Origin": "https://aurora.example"})
    assert not await opens(server.url, {"Origin": "http://aurora.example"})
    assert not await opens(server.url, {"Origin": "https://aurora.example.evil.example"})


# -- sessions -------------------------------------------------------------------------------------
async def test_new_session_leaves_the_previous_ones_room(live_server):
    first = Widget(live_server.url)
    await first.connect()
    old = await first.session("first-session-00001")
    new = await first.session(None)
    assert new != old
    other = Widget(live_server.url)  # the old session, rejoined elsewhere
    await other.connect()
    try:
        assert await other.session(old) == old
        await other.say("for the old session", old)
        assert (await other.next())["text"] == "echo: for the old session"
        with pytest.raises(asyncio.TimeoutError):
            await first.next(timeout=0.7)
        await first.say("mine", new)
        assert (await first.next())["text"] == "echo: mine"
        with pytest.raises(asyncio.TimeoutError):
            await other.next(timeout=0.5)
    finally:
        await first.close()
        await other.close()


ISSUED = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize("requested", [
    "short", "a" * 15, "b" * 65, "has.dots:and-colons-01", "spaces are not ok 01",
    "ñandú-session-0001", "newline-at-the-end\n", 12345678901234567890, ["list-session-id-0001"],
])
async def test_malformed_session_id_gets_a_server_issued_one(widget, requested):
    issued = await widget.session(requested)
    assert ISSUED.match(issued) and issued != requested


@pytest.mark.parametrize("requested", ["a" * 16, "Z_9-" * 16, "b5f1c8e0d2a94f7c8e6b1a3d5f7c9e0b"])
async def test_well_formed_session_id_kept(widget, requested):
    assert await widget.session(requested) == requested


def idle_for(services, external_id: str, days: float) -> None:
    """Pretend the fan last messaged or connected ``days`` ago."""
    def _set(session):
        identity = session.scalars(select(ChannelIdentity).where(
            ChannelIdentity.external_id == external_id)).one()
        identity.created_at = identity.last_inbound_at = utcnow() - dt.timedelta(days=days)
        session.commit()

    run_db(services, _set)


def conversation_of(services, external_id: str) -> tuple[int, dt.datetime]:
    def _get(session):
        identity = session.scalars(select(ChannelIdentity).where(
            ChannelIdentity.external_id == external_id)).one()
        conv = session.scalars(select(Conversation).where(
            Conversation.identity_id == identity.id)).one()
        return conv.id, identity.last_inbound_at

    return run_db(services, _get)


async def test_idle_session_expires(live_server, fake_rasa):
    services = live_server.app.state.services
    fan = Widget(live_server.url)
    await fan.connect()
    old = await fan.session("idle-session-000001")
    await fan.say("my booking reference", old)
    assert (await fan.next())["text"] == "echo: my booking reference"
    await fan.close()
    old_conversation, _ = conversation_of(services, old)
    idle_for(services, old, days=31)

    later = Widget(live_server.url)  # the widget replays its stored id a month later
    await later.connect()
    try:
        new = await later.session(old)
        assert ISSUED.match(new)
        new_conversation, _ = conversation_of(services, new)
        assert new_conversation != old_conversation
        await later.say("hello again", new)
        assert (await later.next())["text"] == "echo: hello again"
        assert fake_rasa.calls[-1]["sender"] == f"webchat-{new}"  # a new tracker too
        # the old id never reopens the old thread, and asking does not revive it
        assert await later.session(old) not in (old, new)
        _, last = conversation_of(services, old)
        assert utcnow() - last > dt.timedelta(days=30)
    finally:
        await later.close()


async def test_session_within_idle_period_rejoins_and_connection_counts(live_server):
    services = live_server.app.state.services
    fan = Widget(live_server.url)
    await fan.connect()
    try:
        sid = await fan.session("active-session-00001")
        idle_for(services, sid, days=29)
        assert await fan.session(sid) == sid
        _, last = conversation_of(services, sid)
        assert utcnow() - last < dt.timedelta(minutes=1)  # the connection restarted the clock
    finally:
        await fan.close()


async def test_idle_period_is_a_setting(make_live_server):
    server = make_live_server(WEBCHAT_SESSION_IDLE_DAYS=2)
    services = server.app.state.services
    fan = Widget(server.url)
    await fan.connect()
    try:
        kept = await fan.session("kept-session-000001")
        gone = await fan.session("gone-session-000001")
        idle_for(services, kept, days=1)
        idle_for(services, gone, days=3)
        assert await fan.session(kept) == kept
        assert await fan.session(gone) != gone
    finally:
        await fan.close()


# -- frame size -----------------------------------------------------------------------------------
async def test_oversize_message_refused_and_others_served(live_server, fake_rasa):
    big = Widget(live_server.url)
    closed = asyncio.Event()
    big.sio.on("disconnect", lambda *args: closed.set())
    await big.connect()
    sid = await big.session(None)
    await big.say("x" * 100_000, sid)  # a 100 KB socket.io message, over the 64 KiB cap
    await asyncio.wait_for(closed.wait(), 5)
    assert big.uttered.empty()  # never parsed, never answered
    fan = Widget(live_server.url)
    await fan.connect()
    try:
        other = await fan.session(None)
        await fan.say("still there?", other)
        assert (await fan.next())["text"] == "echo: still there?"
    finally:
        await fan.close()
    n = run_db(live_server.app.state.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))
    assert n == 1 and len(fake_rasa.calls) == 1


async def test_longest_fan_message_fits_under_the_cap(widget, live_server):
    sid = await widget.session(None)
    longest = "\U0001F600" * 4000  # MAX_MESSAGE_CHARS of the widest text: ~48 KB as JSON
    await widget.say(longest, sid)

    def stored(session):
        return session.scalar(select(Message.text).where(Message.kind == MessageKind.incoming))

    assert await wait_for(lambda: run_db(live_server.app.state.services, stored)) == longest
    assert widget.sio.connected


async def test_oversize_websocket_frame_closed_by_the_server(live_server):
    url = live_server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, max_size=None) as ws:
        assert (await ws.recv()).startswith("0")  # engine.io open
        await ws.send("4" + "y" * (64 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1009  # "message too big": uvicorn's ws_max_size


async def test_oversize_polling_body_refused(live_server):
    query = {"EIO": "4", "transport": "polling"}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as client:
        r = await client.get("/socket.io/", params=query)
        query["sid"] = re.search(r'"sid":"([^"]+)"', r.text).group(1)
        # engine.io closes the session: the pending poll gets the close packet, the post a 400
        poll = asyncio.create_task(client.get("/socket.io/", params=query))
        await asyncio.sleep(0.5)  # the poll is waiting before the post arrives
        post = await client.post("/socket.io/", params=query,
                                 content=b"4" + b"z" * (64 * 1024 + 1))
        assert post.status_code == 400
        assert (await poll).text.endswith("1")


def test_launcher_caps_websocket_frames(monkeypatch):
    import uvicorn

    from api import __main__ as launcher

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("WEBSOCKET_MAX_BYTES", "70000")
    monkeypatch.setenv("APP_ENV", "local")  # the service's default is production
    launcher.main()
    assert seen["ws_max_size"] == 70000
