"""The bot path under failure: holding reply, retry, tracker check, ordering, parallelism.

These tests are about the relay, not triage: the app runs with the pattern-only triage
(``pattern_triage``), so what happens to their made-up messages ("f2-1", "m3") is fixed by the
test, not by what a trained model thinks of them.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from api.conversations.models import Message
from api.enums import MessageKind, RelayStatus, SenderType
from tests.api.conftest import _harness, run_db, wait_for

URL = "/webhooks/rest/webhook"
HOLDING = "Sorry, I can't answer right now."


@pytest.fixture
async def harness(make_settings, pattern_triage, clock):
    async for h in _harness(make_settings(), triage=pattern_triage, clock=clock, timers=False):
        yield h


def _incoming(harness):
    return run_db(harness.services, lambda s: s.scalars(
        select(Message).where(Message.kind == MessageKind.incoming).order_by(Message.id)).all())


def _outgoing(harness):
    return run_db(harness.services, lambda s: s.scalars(
        select(Message).where(Message.kind == MessageKind.outgoing).order_by(Message.id)).all())


async def test_rasa_down_holding_reply_then_retry(harness, fake_rasa):
    fake_rasa.mode = "refuse"
    r = await harness.client.post(URL, json={"sender": "ana", "message": "hello"})
    assert r.status_code == 200
    assert len(r.json()) == 1 and r.json()[0]["text"].startswith(HOLDING)
    msg = _incoming(harness)[0]
    assert msg.relay_status == RelayStatus.pending and msg.relay_error == "unreachable"
    fake_rasa.mode = "ok"
    await wait_for(lambda: _incoming(harness)[0].relay_status == RelayStatus.answered, 5)
    assert fake_rasa.turns_for("rest-ana") == 1
    # the answer waits for the fan's next request (REST has no push), exactly once
    r = await harness.client.post(URL, json={"sender": "ana", "message": "again"})
    assert [i["text"] for i in r.json()] == ["echo: hello", "echo: again"]


async def test_slow_turn_is_not_answered_twice(harness, fake_rasa):
    """Rasa ran the turn but answered after our timeout: the tracker has it; no re-send."""
    fake_rasa.mode = "slow"
    r = await harness.client.post(URL, json={"sender": "bo", "message": "hello"})
    assert r.json()[0]["text"].startswith(HOLDING)
    fake_rasa.mode = "ok"
    await wait_for(lambda: _incoming(harness)[0].relay_status == RelayStatus.answered, 5)
    assert fake_rasa.turns_for("rest-bo") == 1
    assert len([c for c in fake_rasa.calls if c["sender"] == "rest-bo"]) == 1
    assert fake_rasa.tracker_calls >= 1
    texts = [m.text for m in _outgoing(harness) if m.sender_type == SenderType.bot]
    assert texts == ["echo: hello"]


async def test_garbage_answer_recovered_from_tracker(harness, fake_rasa):
    fake_rasa.mode = "garbage"
    r = await harness.client.post(URL, json={"sender": "cy", "message": "buttons"})
    assert r.json()[0]["text"].startswith(HOLDING)
    assert _incoming(harness)[0].relay_error == "garbage"
    fake_rasa.mode = "ok"
    await wait_for(lambda: _incoming(harness)[0].relay_status == RelayStatus.answered, 5)
    assert fake_rasa.turns_for("rest-cy") == 1
    bot = [m for m in _outgoing(harness) if m.sender_type == SenderType.bot]
    assert bot[0].payload["buttons"][1]["payload"] == "/request_human"


async def test_http_error_retried_until_answered(harness, fake_rasa):
    fake_rasa.mode = "error"
    await harness.client.post(URL, json={"sender": "di", "message": "one"})
    await harness.client.post(URL, json={"sender": "di", "message": "two"})
    holding = [m for m in _outgoing(harness) if m.sender_type == SenderType.system]
    assert len(holding) == 1  # the second waits behind the first, no second holding reply
    fake_rasa.mode = "ok"
    await wait_for(lambda: all(m.relay_status == RelayStatus.answered for m in _incoming(harness)))
    sent = [c["message"] for c in fake_rasa.calls if c["sender"] == "rest-di"]
    assert sent[-2:] == ["one", "two"]  # order kept


async def test_order_within_and_parallel_across_conversations(harness, fake_rasa):
    fake_rasa.delay = 0.2
    t0 = time.monotonic()

    async def fan(name):
        for i in range(3):
            r = await harness.client.post(URL, json={"sender": name, "message": f"{name}-{i}"})
            assert r.json() == [{"recipient_id": name, "text": f"echo: {name}-{i}"}]

    await asyncio.gather(*(fan(f"f{n}") for n in range(4)))
    elapsed = time.monotonic() - t0
    assert elapsed < 12 * 0.2  # 12 turns of 0.2 s did not run one after another
    assert fake_rasa.max_in_flight >= 2
    for n in range(4):
        sent = [c["message"] for c in fake_rasa.calls if c["sender"] == f"rest-f{n}"]
        assert sent == [f"f{n}-0", f"f{n}-1", f"f{n}-2"]


async def test_concurrent_same_conversation_is_serialised(harness, fake_rasa):
    fake_rasa.delay = 0.1
    await asyncio.gather(*(
        harness.client.post(URL, json={"sender": "eve", "message": f"m{i}"}) for i in range(5)))
    assert fake_rasa.max_in_flight == 1
    sent = [c["message"] for c in fake_rasa.calls]
    stored = [m.text for m in _incoming(harness)]
    assert sent == stored  # Rasa saw them in the order they were stored


async def test_a_failing_semantic_layer_does_not_lose_the_bots_answer(harness, fake_rasa,
                                                                     pattern_triage,
                                                                     monkeypatch):
    def broken(text):
        raise RuntimeError("encoder broke")

    monkeypatch.setattr(pattern_triage, "meaning", broken)
    r = await harness.client.post(URL, json={"sender": "flo", "message": "hello there"})
    assert r.json() == [{"recipient_id": "flo", "text": "echo: hello there"}]
    assert _incoming(harness)[0].relay_status == RelayStatus.answered
    assert fake_rasa.turns_for("rest-flo") == 1
