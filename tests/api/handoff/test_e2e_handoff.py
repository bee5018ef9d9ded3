"""Handoff end to end with the real Rasa + action servers and the real triage model.

A fan on socket.io writes something urgent and is told, within a second, by name which welfare
person is taking over (the handoff object in the metadata); the person's reply reaches the fan
under their name; the bot stays silent; handback resumes the bot. The same over REST, where the
handoff object is in the reply list and staff messages lead the next reply list. Routine
questions, even grumpy ones, still get the bot's answer.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.api.conftest import LiveServer, go_online, login
from tests.api.test_webchat import Widget

pytestmark = pytest.mark.rasa

LOST = "I can't find my friend and she isn't answering"
DOORS = "23:30"  # data/venue.yml
NOOR = {"name": "Noor Visser", "handle": "noor", "title": "Welfare & safety lead"}
REST = "/webhooks/rest/webhook"


@pytest.fixture
def switchboard(bot_settings, triage_engine):
    server = LiveServer(bot_settings(), triage=triage_engine).start()
    yield server
    server.stop()


async def _welfare_online(client) -> dict[str, dict]:
    headers = {h: await login(client, h) for h in ("noor", "karim")}
    for h in headers.values():
        await go_online(client, h)
    return headers


async def test_webchat_handoff_named_person_silence_and_handback(switchboard):
    async with httpx.AsyncClient(base_url=switchboard.url, timeout=60) as api:
        staff = await _welfare_online(api)
        widget = Widget(switchboard.url)
        await widget.connect()
        try:
            sid = await widget.session("e2e-welfare-session-01")
            started = time.monotonic()
            await widget.say(LOST, sid)
            told = await widget.next(timeout=5)
            elapsed = time.monotonic() - started
            assert elapsed < 1.0, elapsed
            assert told["text"].startswith("I'm passing you to Noor, our Welfare & safety lead")
            handoff = told["metadata"]["handoff"]
            assert handoff["status"] == "assigned" and handoff["assignee"] == NOOR
            assert handoff["topic"] == "lost_person" and handoff["priority"] == "urgent"
            assert handoff["reasons"]
            cid = handoff["conversation_id"]
            with pytest.raises(asyncio.TimeoutError):
                await widget.next(timeout=0.5)  # no bot text for a safety handoff

            r = await api.post(f"/api/v1/conversations/{cid}/messages",
                               json={"text": "Hi, Noor here. Where did you see her last?"},
                               headers=staff["noor"])
            assert r.status_code == 201, r.text
            assert await widget.next(timeout=5) == {
                "text": "Noor: Hi, Noor here. Where did you see her last?",
                "metadata": {"sender": {"name": NOOR["name"], "title": NOOR["title"]}}}

            await widget.say("what time do doors open?", sid)  # routine, but Noor owns it
            with pytest.raises(asyncio.TimeoutError):
                await widget.next(timeout=2.0)  # the bot stays silent

            r = await api.post(f"/api/v1/conversations/{cid}/handback", headers=staff["noor"])
            assert r.status_code == 200 and r.json()["status"] == "bot"
            greeting = await widget.next(timeout=5)
            assert "Noor" in greeting["text"] and "metadata" not in greeting
            await widget.say("what time do the doors open tonight?", sid)
            answer = await widget.next(timeout=60)
            assert DOORS in answer["text"], answer
        finally:
            await widget.close()


async def test_rest_handoff_object_and_staff_messages_lead(switchboard):
    async with httpx.AsyncClient(base_url=switchboard.url, timeout=60) as api:
        staff = await _welfare_online(api)
        r = await api.post(REST, json={"sender": "e2e-rest-welfare", "message": LOST})
        [item] = r.json()
        handoff = item["custom"]["handoff"]
        assert handoff["status"] == "assigned" and handoff["assignee"] == NOOR
        assert item["text"].startswith("I'm passing you to Noor")
        cid = handoff["conversation_id"]
        r = await api.post(f"/api/v1/conversations/{cid}/messages",
                           json={"text": "Noor here: stay by the main bar."},
                           headers=staff["noor"])
        assert r.status_code == 201
        r = await api.post(REST, json={"sender": "e2e-rest-welfare",
                                       "message": "what time do doors open?"})
        assert r.json() == [{"recipient_id": "e2e-rest-welfare",
                             "text": "Noor here: stay by the main bar.",
                             "custom": {"sender": {"name": NOOR["name"],
                                                   "title": NOOR["title"]}}}]
        r = await api.post(f"/api/v1/conversations/{cid}/handback", headers=staff["noor"])
        assert r.status_code == 200
        r = await api.post(REST, json={"sender": "e2e-rest-welfare",
                                       "message": "what time do the doors open tonight?"})
        replies = r.json()
        assert "Noor" in replies[0]["text"]  # the greeting back leads
        assert any(DOORS in (i.get("text") or "") for i in replies[1:]), replies
        assert not any("custom" in i for i in replies[1:])


@pytest.mark.parametrize("text", [
    "ugh the queue was so long last time. what time do doors open?",
    "what time do doors open?",
])
async def test_routine_questions_even_grumpy_get_the_bot(switchboard, text):
    async with httpx.AsyncClient(base_url=switchboard.url, timeout=60) as api:
        await _welfare_online(api)
        r = await api.post(REST, json={"sender": f"e2e-routine-{len(text)}", "message": text})
    replies = r.json()
    assert any(DOORS in (i.get("text") or "") for i in replies), replies
    assert not any("custom" in i for i in replies), replies


# The semantic layer (issue: triage that understands): emergencies described through what the
# fan sees, not through a word the patterns know, in English and Spanish; clubbing idioms; grief.
SEEN_NOT_SAID = [
    ("my mate is lying behind the speakers and his lips have gone a weird colour", "en"),
    ("mi amiga lleva un rato tirada en el baño y no abre los ojos", "es"),
]


@pytest.mark.parametrize(("text", "language"), SEEN_NOT_SAID)
async def test_emergency_described_through_what_the_fan_sees_reaches_noor(switchboard, text,
                                                                          language):
    async with httpx.AsyncClient(base_url=switchboard.url, timeout=60) as api:
        await _welfare_online(api)
        r = await api.post(REST, json={"sender": f"e2e-seen-{language}", "message": text})
    [item] = r.json()  # the bot's own answer is never shown for an emergency
    handoff = item["custom"]["handoff"]
    assert handoff["priority"] == "urgent" and handoff["assignee"]["handle"] in ("noor", "karim")
    first = handoff["assignee"]["name"].split()[0]
    assert first in item["text"]
    assert any("closest known case" in reason for reason in handoff["reasons"]), handoff


@pytest.mark.parametrize("text", ["that last drop absolutely killed me, what time do doors open?",
                                  "i'm dead 😂 best night ever, what time do doors open?"])
async def test_clubbing_idioms_get_the_bot(switchboard, text):
    async with httpx.AsyncClient(base_url=switchboard.url, timeout=60) as api:
        await _welfare_online(api)
        r = await api.post(REST, json={"sender": f"e2e-idiom-{len(text)}", "message": text})
    replies = r.json()
    assert any(DOORS in (i.get("text") or "") for i in replies), replies
    assert not any("custom" in i for i in replies), replies


async def test_a_bereaved_fan_is_met_by_a_person_not_asked_to_rephrase(switchboard):
    async with httpx.AsyncClient(base_url=switchboard.url, timeout=60) as api:
        for handle in ("laura", "tom", "sam"):
            await go_online(api, await login(api, handle))
        r = await api.post(REST, json={
            "sender": "e2e-grief",
            "message": "my mum passed away on monday and the funeral is the same day as the "
                       "closing party, i don't really know what to do"})
    [item] = r.json()
    assert "say it another way" not in item["text"] and "rephrase" not in item["text"]
    assert item["text"].startswith("I'm so sorry"), item["text"]
    handoff = item["custom"]["handoff"]
    assert handoff["status"] == "assigned" and handoff["priority"] != "urgent"
    assert handoff["assignee"]["name"].split()[0] in item["text"]
