"""The rasa-webchat socket.io protocol, spoken by a python-socketio client as the widget does."""

from __future__ import annotations

import asyncio

import pytest
import socketio
from sqlalchemy import func, select

from api.conversations.models import Conversation, Message
from api.enums import MessageKind
from tests.api.conftest import run_db


class Widget:
    """Acts like rasa-webchat 1.0.1: session_request, then user_uttered; collects bot_uttered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.uttered: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_confirm", self.confirmed.put_nowait)
        self.sio.on("bot_uttered", self.uttered.put_nowait)

    async def connect(self) -> None:
        await self.sio.connect(self.url, socketio_path="/socket.io/", transports=["websocket"])

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
