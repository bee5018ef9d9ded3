"""socket.io across replicas (REDIS_URL: python-socketio's Redis manager): a staff reply sent
through replica A reaches the fan's web chat socket connected to replica B. Two real
switchboards on one database and one Redis (a socket.io channel of the test's own) and a real
socket.io client speaking the rasa-webchat protocol."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import DEMO_PASSWORD, LiveServer
from tests.api.test_webchat import Widget
from tests.support.redis_servers import SHARED_REDIS_URL, redis_prefix_fixture  # noqa: F401

LOST = "I can't find my friend and she isn't answering"


@pytest.fixture
def two_replicas(make_settings, triage_engine, redis_prefix):
    shared = {"REDIS_URL": SHARED_REDIS_URL, "REDIS_PREFIX": redis_prefix}
    # A serves the staff; its relay does not poll for B's turns (one turn on one replica is
    # the claims' business, not this test's).
    a = LiveServer(make_settings(**shared, RELAY_POLL_S=3600), triage=triage_engine).start()
    b = LiveServer(make_settings(**shared), triage=triage_engine).start()
    yield a, b
    b.stop()
    a.stop()


async def test_staff_reply_on_one_replica_reaches_the_fan_on_another(two_replicas):
    a, b = two_replicas
    async with httpx.AsyncClient(base_url=a.url, timeout=20) as c:
        r = await c.post("/api/v1/auth/login", json={"handle": "karim", "password": DEMO_PASSWORD})
        karim = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await c.put("/api/v1/staff/me/presence", json={"presence": "online"},
                            headers=karim)).status_code == 200
        fan = Widget(b.url)
        await fan.connect()
        try:
            session_id = await fan.session()
            await fan.say(LOST, session_id)
            conv = None
            for _ in range(200):  # the fan's message is handed to Karim on B
                rows = (await c.get("/api/v1/conversations", headers=karim)).json()
                if rows:
                    conv = rows[0]
                    break
                await asyncio.sleep(0.05)
            assert conv and conv["assignee"]["handle"] == "karim"
            reply = "Karim here: stay at the main bar, I'm coming."
            r = await c.post(f"/api/v1/conversations/{conv['id']}/messages",
                             json={"text": reply}, headers=karim)
            assert r.status_code == 201, r.text
            while True:  # emitted on A, received on B's socket, under Karim's name
                said = await fan.next(timeout=10)
                if said.get("text", "").endswith(reply):
                    break
            assert said["metadata"]["sender"]["name"].startswith("Karim")
            assert b.app.state.services.webchat.connections == 1
            assert a.app.state.services.webchat.connections == 0
        finally:
            await fan.close()
