"""REST resends: a request whose ``metadata.message_id`` is already stored answers with that
message's replies again (waiting for its turn while it runs), so a client that lost a response
gets exactly one bot answer for its message across its requests, and Rasa runs the turn once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from api.conversations.models import Message
from api.enums import MessageKind
from tests.api.conftest import LiveServer, _harness, run_db, wait_for

URL = "/webhooks/rest/webhook"
ECHO = [{"recipient_id": "ana", "text": "echo: hello"}]


def body(message_id: str, text: str = "hello") -> dict:
    return {"sender": "ana", "message": text, "metadata": {"message_id": message_id}}


def stored_fan_messages(harness) -> int:
    return run_db(harness.services, lambda s: s.scalar(
        select(func.count()).select_from(Message).where(Message.kind == MessageKind.incoming)))


@pytest.fixture
async def harness(make_settings, pattern_triage, clock):
    async for h in _harness(make_settings(), triage=pattern_triage, clock=clock, timers=False):
        yield h


async def test_resend_after_the_turn_answers_the_same_replies(harness, fake_rasa):
    first = await harness.client.post(URL, json=body("c-1"))
    again = await harness.client.post(URL, json=body("c-1"))
    assert first.json() == ECHO
    assert again.status_code == 200 and again.json() == ECHO
    assert len(fake_rasa.calls) == 1 and stored_fan_messages(harness) == 1


async def test_resend_to_another_replica_after_a_lost_response(harness, make_settings,
                                                               pattern_triage, clock, fake_rasa):
    """The response that carried the replies was lost with its replica: the replies are
    marked collected, and the resend to another replica (a second switchboard on the same
    database and Rasa, sharing nothing else) still gets them."""
    await harness.client.post(URL, json=body("c-1"))
    async for other_replica in _harness(make_settings(), triage=pattern_triage, clock=clock,
                                        timers=False):
        again = await other_replica.client.post(URL, json=body("c-1"))
        assert again.json() == ECHO
    assert len(fake_rasa.calls) == 1 and stored_fan_messages(harness) == 1


async def test_resend_while_the_turn_runs_waits_for_it(harness, fake_rasa):
    fake_rasa.delay = 0.4  # Rasa is thinking when the resend arrives
    original = asyncio.create_task(harness.client.post(URL, json=body("c-2")))
    await wait_for(lambda: fake_rasa.calls, 2)
    again = await harness.client.post(URL, json=body("c-2"))
    assert again.json() == ECHO  # once, though the original also returned it
    assert (await original).json() == ECHO
    assert len(fake_rasa.calls) == 1 and fake_rasa.turns_for("rest-ana") == 1
    assert stored_fan_messages(harness) == 1


async def test_request_lost_mid_turn_then_resent_gets_one_answer(harness, fake_rasa):
    """The client's request dies while Rasa runs the turn (its connection, its replica): the
    resend waits until the relay recovers the turn from Rasa's tracker, without a second turn."""
    fake_rasa.mode, fake_rasa.slow_s = "slow", 0.5  # the turn runs, its answer comes late
    lost = asyncio.create_task(harness.client.post(URL, json=body("c-3")))
    await wait_for(lambda: fake_rasa.turns_for("rest-ana") == 1, 2)
    lost.cancel()
    fake_rasa.mode = "ok"
    again = await harness.client.post(URL, json=body("c-3"))
    assert again.json() == ECHO
    assert len(fake_rasa.calls) == 1 and stored_fan_messages(harness) == 1
    # nothing of that turn is left to lead the fan's next reply list
    after = await harness.client.post(URL, json=body("c-4", "thanks"))
    assert after.json() == [{"recipient_id": "ana", "text": "echo: thanks"}]


async def test_resend_also_carries_replies_not_collected_yet(harness, fake_rasa):
    """The contract holds for a resend: replies since the last request lead the list."""
    fake_rasa.mode = "refuse"  # the first message gets the holding reply, its answer comes later
    r = await harness.client.post(URL, json=body("c-5", "first"))
    assert r.json()[0]["text"].startswith("Sorry, I can't answer right now.")
    fake_rasa.mode = "ok"
    await wait_for(lambda: fake_rasa.turns_for("rest-ana") == 1, 5)
    second = await harness.client.post(URL, json=body("c-6", "second"))
    assert [i["text"] for i in second.json()] == ["echo: first", "echo: second"]
    again = await harness.client.post(URL, json=body("c-6", "second"))
    assert [i["text"] for i in again.json()] == ["echo: second"]
    assert fake_rasa.turns_for("rest-ana") == 2


async def test_request_the_client_left_collects_nothing(make_settings, pattern_triage, fake_rasa):
    """The fault test's finding: a client that gave up on a request (its time-out; Rasa was
    slow) is gone when the request ends, so that request marks no reply sent: what it would
    have answered leads the client's next request instead of being lost with it."""
    server = LiveServer(make_settings(), triage=pattern_triage).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            fake_rasa.mode, fake_rasa.slow_s = "slow", 1.5  # the turn runs, its answer is late
            with pytest.raises(httpx.ReadTimeout):
                await client.post(URL, json=body("c-10", "first"), timeout=0.5)
            await wait_for(lambda: fake_rasa.turns_for("rest-ana") == 1, 5)
            await asyncio.sleep(2.5)  # the abandoned request has finished on the server
            fake_rasa.mode = "ok"
            after = await client.post(URL, json=body("c-11", "second"), timeout=10)
        # Rasa's time-out (1 s here) gave the abandoned request the holding reply: not taken
        # by it, so the client gets it, then the late answer, then its new message's.
        texts = [i["text"] for i in after.json()]
        assert texts[0].startswith("Sorry, I can't answer right now.")
        assert texts[1:] == ["echo: first", "echo: second"]
    finally:
        server.stop()
