"""Floods are absorbed: rate limits per client address and per fan session or sender, the client
address behind a trusted balancer, loopback exempt in local mode, urgent alerts grouped per
address (every fan still gets their handoff)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import socketio
from sqlalchemy import func, select

from api.conversations.models import Message
from api.enums import MessageKind
from api.events import InProcessEventBus
from api.ratelimit.address import client_address
from api.ratelimit.alerts import UrgentAlerts
from api.ratelimit.limiter import RateLimits, Scope, window
from api.settings import Settings
from tests.api.conftest import LiveServer, _harness, run_db
from tests.api.fakes import AlertReceiver

URGENT = "my friend collapsed near the toilets and isn't breathing properly"


def settings_for(**values) -> Settings:
    return Settings(_env_file=None, APP_ENV="local", **values)


def fan_messages(services) -> int:
    return run_db(services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))


# -- the client address ---------------------------------------------------------------------------
def scope(peer: str, *forwarded: str) -> dict:
    return {"type": "http", "client": (peer, 4711),
            "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


def test_peer_is_the_client_without_trusted_proxies():
    s = settings_for()
    assert client_address(scope("203.0.113.9", "198.51.100.1"), s) == "203.0.113.9"


def test_forwarded_for_believed_only_from_a_trusted_balancer():
    s = settings_for(TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.5")
    # the balancer appended the real peer; what the client claimed (left) is ignored
    assert client_address(scope("10.1.2.3", "1.1.1.1, 198.51.100.7"), s) == "198.51.100.7"
    # two trusted hops: the right-most untrusted entry, across several headers
    assert client_address(scope("10.1.2.3", "1.1.1.1, 198.51.100.7", "192.0.2.5"),
                          s) == "198.51.100.7"
    # an untrusted peer's header is not believed
    assert client_address(scope("203.0.113.9", "198.51.100.7"), s) == "203.0.113.9"
    # no header: the balancer itself
    assert client_address(scope("10.1.2.3"), s) == "10.1.2.3"
    assert client_address(scope("10.1.2.3", "[2001:db8::1]:443"), s) == "2001:db8::1"


def test_engineio_environ_is_understood():
    s = settings_for(TRUSTED_PROXIES="127.0.0.1")
    environ = {"REMOTE_ADDR": "127.0.0.1", "asgi.scope": scope("127.0.0.1", "198.51.100.8")}
    assert client_address(environ, s) == "198.51.100.8"


def test_bad_settings_refused():
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        settings_for(TRUSTED_PROXIES="not-a-network")
    with pytest.raises(ValueError, match="RATE_LIMIT_SENDER"):
        settings_for(RATE_LIMIT_SENDER="fast")


def test_rate_and_burst_become_one_moving_window():
    item = window("30/second", 100)  # venue Wi-Fi: 100 at once, then over 30 a second
    assert (item.amount, item.get_expiry()) == (100, 3)
    item = window("1/second", 10)
    assert (item.amount, item.get_expiry()) == (10, 10)


# -- the limiter, in memory and in Redis ----------------------------------------------------------
@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379/0"])
async def test_sender_burst_then_refused_with_retry_after(storage):
    prefix = f"test-limits-{uuid.uuid4().hex}"
    s = settings_for(RATE_LIMIT_STORAGE_URL=storage, RATE_LIMIT_KEY_PREFIX=prefix,
                     RATE_LIMIT_SENDER="1/second", RATE_LIMIT_SENDER_BURST=3)
    limits, replica = RateLimits(s), RateLimits(s)
    try:
        for _ in range(3):
            assert (await limits.check("198.51.100.1", (Scope.sender, "fan-a"))).allowed
        refused = await limits.check("198.51.100.1", (Scope.sender, "fan-a"))
        assert not refused.allowed and 1 <= refused.retry_after <= 3
        assert (await limits.check("198.51.100.1", (Scope.sender, "fan-b"))).allowed
        if storage.startswith("redis"):  # replicas share the counters
            assert not (await replica.check("198.51.100.2", (Scope.sender, "fan-a"))).allowed
    finally:
        await limits.reset()


async def test_loopback_exempt_in_local_mode_unless_turned_on():
    tight = dict(RATE_LIMIT_SENDER="1/second", RATE_LIMIT_SENDER_BURST=1)
    exempt = RateLimits(settings_for(**tight))
    for _ in range(5):
        assert (await exempt.check("127.0.0.1", (Scope.sender, "fan"))).allowed
    limited = RateLimits(settings_for(RATE_LIMIT_LOOPBACK=True, **tight))
    assert (await limited.check("127.0.0.2", (Scope.sender, "fan"))).allowed
    assert not (await limited.check("127.0.0.2", (Scope.sender, "fan"))).allowed
    # outside local mode loopback is an address like any other
    assert not RateLimits(settings_for(**tight)).exempt("198.51.100.1")


# -- REST and login over HTTP ---------------------------------------------------------------------
@pytest.fixture
async def limited(make_settings, pattern_triage, clock):
    """The app with limits on for the test client's loopback address, behind a "balancer" at
    127.0.0.1 so each request can come from its own address (X-Forwarded-For)."""
    settings = make_settings(RATE_LIMIT_LOOPBACK=True, TRUSTED_PROXIES="127.0.0.1",
                             RATE_LIMIT_LOGIN="1/minute", RATE_LIMIT_LOGIN_BURST=3,
                             RATE_LIMIT_SENDER="1/minute", RATE_LIMIT_SENDER_BURST=10)
    async for h in _harness(settings, triage=pattern_triage, clock=clock, timers=False):
        yield h


def frm(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_a_fan_typing_normally_never_sees_a_limit(limited):
    # ten messages in a row is more than anyone types; all answered
    for i in range(10):
        r = await limited.client.post("/webhooks/rest/webhook", headers=frm("198.51.100.10"),
                                      json={"sender": "typist", "message": f"question {i}"})
        assert r.status_code == 200, r.text
        assert r.json()[0]["text"] == f"echo: question {i}"


async def test_rest_sender_flood_gets_429_and_nothing_is_stored(limited):
    for i in range(10):
        r = await limited.client.post("/webhooks/rest/webhook", headers=frm("198.51.100.11"),
                                      json={"sender": "flooder", "message": f"spam {i}"})
        assert r.status_code == 200
    stored = fan_messages(limited.services)
    r = await limited.client.post("/webhooks/rest/webhook", headers=frm("198.51.100.11"),
                                  json={"sender": "flooder", "message": "one more"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "nothing was stored" in r.json()["detail"]
    assert fan_messages(limited.services) == stored
    # another fan behind the same address is not silenced
    r = await limited.client.post("/webhooks/rest/webhook", headers=frm("198.51.100.11"),
                                  json={"sender": "neighbour", "message": "hello"})
    assert r.status_code == 200


async def test_venue_wifi_many_fans_one_address(limited):
    # a hundred fans on one venue network write at once: none refused
    async def one(i: int) -> int:
        r = await limited.client.post("/webhooks/rest/webhook", headers=frm("198.51.100.12"),
                                      json={"sender": f"venue-{i}", "message": "hi"})
        return r.status_code

    codes = await asyncio.gather(*(one(i) for i in range(100)))
    assert codes == [200] * 100


async def test_login_limited_per_address_429_json(limited):
    for _ in range(3):
        r = await limited.client.post("/api/v1/auth/login", headers=frm("198.51.100.20"),
                                      json={"handle": "nobody-here", "password": "guess"})
        assert r.status_code == 401
    r = await limited.client.post("/api/v1/auth/login", headers=frm("198.51.100.20"),
                                  json={"handle": "noor", "password": "aurora-demo"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["detail"].startswith("too many sign-in attempts")
    # Noor from another address signs in
    r = await limited.client.post("/api/v1/auth/login", headers=frm("198.51.100.21"),
                                  json={"handle": "noor", "password": "aurora-demo"})
    assert r.status_code == 200


async def test_inbox_form_login_limited_per_address(limited):
    for _ in range(4):
        page = await limited.client.get("/inbox/login", headers=frm("198.51.100.22"))
        csrf = page.cookies.get("sb_login_csrf")
        r = await limited.client.post("/inbox/login", headers=frm("198.51.100.22"),
                                      data={"handle": "x", "password": "y", "csrf": csrf})
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert "Too many sign-in attempts" in r.text


# -- web chat over socket.io ----------------------------------------------------------------------
class Fan:
    def __init__(self, url: str, address: str) -> None:
        self.url, self.address = url, address
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.uttered: asyncio.Queue = asyncio.Queue()
        self.sio.on("session_confirm", self.confirmed.put_nowait)
        self.sio.on("bot_uttered", self.uttered.put_nowait)

    async def __aenter__(self) -> Fan:
        await self.sio.connect(self.url, socketio_path="/socket.io/", transports=["websocket"],
                               headers={"X-Forwarded-For": self.address})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.sio.disconnect()

    async def session(self) -> str | dict:
        """The confirmed session id, or the bot_uttered refusal."""
        await self.sio.emit("session_request", {"session_id": uuid.uuid4().hex})
        done, pending = await asyncio.wait(
            [asyncio.create_task(self.confirmed.get()), asyncio.create_task(self.uttered.get())],
            timeout=5, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return done.pop().result()

    async def say(self, text: str, session_id: str) -> dict:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id,
                                             "customData": {"language": "en"}})
        return await asyncio.wait_for(self.uttered.get(), 5)


@pytest.fixture
def webchat_server(make_settings, pattern_triage):
    server = LiveServer(make_settings(
        RATE_LIMIT_LOOPBACK=True, TRUSTED_PROXIES="127.0.0.1",
        # per minute: a slow test machine cannot let a window pass mid-test
        RATE_LIMIT_SESSION_REQUEST="1/minute", RATE_LIMIT_SESSION_REQUEST_BURST=3,
        RATE_LIMIT_ADDRESS="1/minute", RATE_LIMIT_ADDRESS_BURST=2,
        RATE_LIMIT_SENDER="1/minute", RATE_LIMIT_SENDER_BURST=3,
    ), triage=pattern_triage).start()
    yield server
    server.stop()


async def test_webchat_session_flood_told_politely(webchat_server):
    fans = [Fan(webchat_server.url, "198.51.100.30") for _ in range(4)]
    try:
        for fan in fans:
            await fan.__aenter__()
        results = [await fan.session() for fan in fans]
    finally:
        for fan in fans:
            await fan.__aexit__()
    assert all(isinstance(r, str) for r in results[:3])
    refusal = results[3]
    assert refusal["metadata"]["error"] == "rate_limited"
    assert refusal["metadata"]["retry_after"] >= 1
    assert "reload the page" in refusal["text"]


async def test_webchat_first_message_passes_a_flooded_address(webchat_server):
    services = webchat_server.app.state.services
    async with Fan(webchat_server.url, "198.51.100.31") as first, \
            Fan(webchat_server.url, "198.51.100.31") as second, \
            Fan(webchat_server.url, "198.51.100.31") as third:
        s1 = await first.session()
        assert await first.say("one", s1) == {"text": "echo: one"}
        for text in ("two", "three"):  # the address's burst of 2 is spent by these
            assert (await first.say(text, s1))["text"] == f"echo: {text}"
        slow = await first.say("four", s1)
        assert slow["metadata"]["error"] == "rate_limited"
        assert "didn't take that one" in slow["text"]
        # new fans behind the flooded address: their first messages still go through
        s2, s3 = await second.session(), await third.session()
        assert await second.say("help", s2) == {"text": "echo: help"}
        assert await third.say("help too", s3) == {"text": "echo: help too"}
        # ... but not their second, while the address is over its limit
        assert (await second.say("again", s2))["metadata"]["error"] == "rate_limited"
    texts = run_db(services, lambda s: list(s.scalars(
        select(Message.text).where(Message.kind == MessageKind.incoming))))
    assert "four" not in texts and "again" not in texts  # refused messages are not stored


async def test_webchat_session_sender_limit(webchat_server):
    async with Fan(webchat_server.url, "198.51.100.32") as fan, \
            Fan(webchat_server.url, "198.51.100.33") as other:
        sid = await fan.session()
        replies = [await fan.say(f"m{i}", sid) for i in range(4)]
        # 3 per session at once (first one is free of the address limit, 2 more within it)
        assert [r.get("metadata", {}).get("error") for r in replies] == [
            None, None, None, "rate_limited"]
        osid = await other.session()
        assert await other.say("hi", osid) == {"text": "echo: hi"}


# -- urgent floods: every fan handed off, alerts grouped ----------------------------------------
async def test_urgent_flood_every_fan_handed_off_alerts_grouped(make_settings, pattern_triage,
                                                                clock):
    receiver = AlertReceiver().start()
    settings = make_settings(ALERT_WEBHOOK_URL=receiver.url + "/hook", RATE_LIMIT_LOOPBACK=True,
                             TRUSTED_PROXIES="127.0.0.1", ALERT_FLOOD_THRESHOLD=2,
                             ALERT_GROUP_WINDOW_S=60)
    try:
        async for h in _harness(settings, triage=pattern_triage, clock=clock, timers=False):
            sub = h.services.bus.subscribe(types={"alert.flood"})

            async def report(i: int, address: str, h=h) -> dict:
                r = await h.client.post("/webhooks/rest/webhook", headers=frm(address),
                                        json={"sender": f"dance-floor-{i}", "message": URGENT})
                assert r.status_code == 200, r.text
                return next(it["custom"]["handoff"] for it in r.json()
                            if "handoff" in (it.get("custom") or {}))

            handoffs = [await report(i, "198.51.100.40") for i in range(8)]
            elsewhere = await report(99, "198.51.100.41")
            assert all(ho["priority"] == "urgent" for ho in handoffs + [elsewhere])
            assert len({ho["conversation_id"] for ho in handoffs}) == 8
            # the same fan's repeated urgent message joins their open thread
            again = await h.client.post("/webhooks/rest/webhook", headers=frm("198.51.100.40"),
                                        json={"sender": "dance-floor-0", "message": URGENT})
            assert again.status_code == 200
            await h.services.handoff.stop()  # sends the held summary, waits for the posts
            banner = await asyncio.wait_for(sub.get(), 1)
            assert banner.data["active"] is True and banner.data["count"] >= 3
    finally:
        receiver.stop()
    texts = [a["text"] for a in receiver.received]
    singles = [t for t in texts if t.startswith("URGENT: conversation")]
    floods = [t for t in texts if t.startswith("URGENT FLOOD")]
    # 2 alone from the flooded network, 1 from the other; the other 6 in one notice + 1 summary
    assert len(singles) == 3
    assert len(floods) == 2 and "6 more urgent threads" in floods[1]
    assert all("breathing" not in t for t in texts)  # no fan text leaves the switchboard


async def test_alert_groups_ignore_conversations_without_a_known_address():
    bus, sent = InProcessEventBus(), []
    alerts = UrgentAlerts(bus=bus, threshold=1, window_s=60)
    for i in range(5):
        alerts.offer(f"URGENT: conversation {i}", i, sent.append)
    assert len(sent) == 5  # timers' reminders and unknown origins are never held
    alerts.note_origin(10, "198.51.100.50")
    alerts.note_origin(11, "198.51.100.50")
    alerts.offer("URGENT: conversation 10", 10, sent.append)
    alerts.offer("URGENT: conversation 11", 11, sent.append)
    assert sent[5] == "URGENT: conversation 10" and sent[6].startswith("URGENT FLOOD")
    alerts.close()
    assert "conversations 11" in sent[-1]
