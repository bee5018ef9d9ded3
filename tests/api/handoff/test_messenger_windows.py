"""A person's reply on Messenger against the fake Graph server: RESPONSE inside 24 h of the fan's
last message, MESSAGE_TAG + HUMAN_AGENT up to 7 days, refused (409) after; a persona when on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from api.conversations.models import ChannelIdentity
from tests.api.conftest import _harness, go_online, login, run_db, wait_for
from tests.api.test_messenger import event, payload, post_signed

LOST = "I can't find my friend and she isn't answering"


@pytest.fixture
async def persona_harness(messenger_settings, triage_engine, clock):
    async for h in _harness(messenger_settings(MESSENGER_PERSONAS=True,
                                               MESSENGER_PAGE_ID="page-1"),
                            triage=triage_engine, clock=clock, timers=False):
        yield h


async def _handed_to_noor(h, fake_graph) -> tuple[int, dict]:
    noor = await login(h.client, "noor")
    await go_online(h.client, noor)
    r = await post_signed(h.client, payload({"messaging": [event(psid="psid-w", mid="m-1",
                                                                  text=LOST)]}))
    assert r.status_code == 200
    sent = await wait_for(lambda: fake_graph.messages())
    handoff_text = sent[0]["body"]["message"]["text"]
    assert handoff_text.startswith("I'm passing you to Noor")
    assert sent[0]["body"]["messaging_type"] == "RESPONSE" and "tag" not in sent[0]["body"]
    r = await h.client.get("/api/v1/conversations?assignee=me", headers=noor)
    [conv] = r.json()
    return conv["id"], noor


def _age(h, **delta) -> None:
    then = dt.datetime.now(dt.UTC) - dt.timedelta(**delta)
    run_db(h.services, lambda s: (s.execute(update(ChannelIdentity).values(
        last_inbound_at=then)), s.commit()))


async def _reply(h, cid, headers, text):
    return await h.client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text},
                               headers=headers)


async def test_windows_response_human_agent_refused(messenger_harness, fake_graph, fake_rasa):
    h = messenger_harness
    cid, noor = await _handed_to_noor(h, fake_graph)
    assert fake_rasa.calls == []

    r = await _reply(h, cid, noor, "Noor here, where are you?")
    assert r.status_code == 201 and r.json()["delivery_status"] == "sent"
    body = fake_graph.messages()[-1]["body"]
    assert body["messaging_type"] == "RESPONSE" and "tag" not in body
    # no persona: the text itself carries the name
    assert body["message"]["text"] == "Noor: Noor here, where are you?"
    assert "persona_id" not in body

    _age(h, hours=30)
    r = await _reply(h, cid, noor, "Checking in: did you find her?")
    assert r.status_code == 201
    body = fake_graph.messages()[-1]["body"]
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"

    _age(h, days=7, hours=1)
    before = len(fake_graph.messages())
    r = await _reply(h, cid, noor, "Hello?")
    assert r.status_code == 409 and "7 days" in r.json()["detail"]
    assert len(fake_graph.messages()) == before  # nothing was sent


async def test_persona_created_once_and_used(persona_harness, fake_graph):
    h = persona_harness
    cid, noor = await _handed_to_noor(h, fake_graph)
    for text in ("Noor here.", "Still with you."):
        assert (await _reply(h, cid, noor, text)).status_code == 201
    [created] = fake_graph.personas()
    assert created["path"].endswith("/page-1/personas")
    assert created["token"] and created["query"] == {}  # the page token in a header
    assert created["body"]["name"] == "Noor Visser"
    staff_msgs = fake_graph.messages()[1:]
    assert len(staff_msgs) == 2
    assert len({m["body"]["persona_id"] for m in staff_msgs}) == 1
    # the persona shows the name: the text is sent as typed
    assert [m["body"]["message"]["text"] for m in staff_msgs] == ["Noor here.", "Still with you."]
    assert "persona_id" not in fake_graph.messages()[0]["body"]  # the system's handoff text
