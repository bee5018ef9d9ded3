"""One language decision per fan text message: stored on the message, sent to Rasa as
``metadata.language``, kept on the conversation for routing and shown in the inbox.

The app runs with the pattern-only triage (``pattern_triage``): the language comes from triage's
lingua detector, which both kinds of triage load; nothing here depends on a trained model.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
import socketio
from sqlalchemy import select

from api.channels.messenger.signature import sign
from api.conversations.language import NOTHING, Detection, LanguageDecider, declared
from api.conversations.models import Conversation, Message
from api.enums import MessageKind
from tests.api.conftest import APP_SECRET, LiveServer, _harness, login, run_db, wait_for

REST = "/webhooks/rest/webhook"
ES_QUESTION = "¿A qué hora abrís esta noche?"
ES_PRICE = "cuánto cuesta el viernes?"
EN_QUESTION = "What time do the doors open tonight?"


@pytest.fixture
async def harness(make_settings, pattern_triage, clock):
    async for h in _harness(make_settings(), triage=pattern_triage, clock=clock, timers=False):
        yield h


@pytest.fixture
async def messenger_harness(messenger_settings, pattern_triage, clock):
    async for h in _harness(messenger_settings(), triage=pattern_triage, clock=clock,
                            timers=False):
        yield h


async def rest(h, sender: str, text: str, **metadata) -> list[dict]:
    body = {"sender": sender, "message": text}
    if metadata:
        body["metadata"] = metadata
    r = await h.client.post(REST, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def messenger_text(h, psid: str, mid: str, text: str) -> None:
    body = {"object": "page", "entry": [{"id": "page-1", "time": 1700000000000, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": "page-1"}, "timestamp": 1700000000000,
         "message": {"mid": mid, "text": text}}]}]}
    raw = json.dumps(body).encode()
    r = await h.client.post("/webhooks/messenger", content=raw, headers={
        "content-type": "application/json", "x-hub-signature-256": sign(APP_SECRET, raw)})
    assert r.status_code == 200, r.text


def fan_messages(h) -> list[tuple[str, str | None]]:
    return run_db(h.services, lambda s: [(m.text, m.language) for m in s.scalars(
        select(Message).where(Message.kind == MessageKind.incoming).order_by(Message.id))])


def thread_language(h) -> str | None:
    return run_db(h.services, lambda s: s.scalars(select(Conversation)).one().language)


def sent_languages(fake_rasa, sender: str) -> list[str]:
    return [c["metadata"]["language"] for c in fake_rasa.calls if c["sender"] == sender]


# -- the decision, end to end -------------------------------------------------------------------
async def test_spanish_rest_message_is_stored_and_sent_as_spanish(harness, fake_rasa):
    await rest(harness, "ana", ES_QUESTION)
    assert fan_messages(harness) == [(ES_QUESTION, "es")]
    assert thread_language(harness) == "es"
    assert sent_languages(fake_rasa, "rest-ana") == ["es"]


async def test_messenger_spanish_is_spanish_not_the_default(messenger_harness, fake_rasa,
                                                            fake_graph):
    await messenger_text(messenger_harness, "p-es", "m-es", ES_PRICE)
    await wait_for(lambda: fake_rasa.calls, 5)
    await messenger_harness.settle()
    assert fan_messages(messenger_harness) == [(ES_PRICE, "es")]
    assert sent_languages(fake_rasa, "messenger-p-es") == ["es"]
    assert thread_language(messenger_harness) == "es"


async def test_a_weak_ok_after_spanish_stays_spanish(harness, fake_rasa):
    await rest(harness, "ana", ES_QUESTION)
    await rest(harness, "ana", "ok")
    await rest(harness, "ana", "thanks!")
    assert [lang for _, lang in fan_messages(harness)] == ["es", "es", "es"]
    assert sent_languages(fake_rasa, "rest-ana") == ["es", "es", "es"]


async def test_a_clear_switch_to_english_switches_the_thread(harness, fake_rasa):
    await rest(harness, "ana", ES_QUESTION)
    await rest(harness, "ana", EN_QUESTION)
    assert [lang for _, lang in fan_messages(harness)] == ["es", "en"]
    assert thread_language(harness) == "en"
    await rest(harness, "ana", "ok")  # and a weak message now follows English
    assert sent_languages(fake_rasa, "rest-ana") == ["es", "en", "en"]


async def test_two_words_do_not_switch_a_thread_but_decide_a_first_message(harness, fake_rasa):
    await rest(harness, "ana", ES_QUESTION)
    await rest(harness, "ana", "hay parking?")  # lingua: English, but two words
    await rest(harness, "bea", "muchas gracias")  # a first message decides on its own
    assert sent_languages(fake_rasa, "rest-ana") == ["es", "es"]
    assert sent_languages(fake_rasa, "rest-bea") == ["es"]


async def test_a_declared_language_is_only_a_hint(harness, fake_rasa):
    # weak guess: the hint decides ("es-ES" is Spanish)
    await rest(harness, "ana", "ok", language="es-ES")
    assert sent_languages(fake_rasa, "rest-ana") == ["es"]
    # a confident detection wins over the hint, on a first message ...
    await rest(harness, "bea", EN_QUESTION, language="es")
    assert sent_languages(fake_rasa, "rest-bea") == ["en"]
    # ... and later: the hint neither overrides it nor replaces the thread's language
    await rest(harness, "bea", "ok", language="es")
    assert sent_languages(fake_rasa, "rest-bea") == ["en", "en"]
    # no hint, nothing to go on: English
    await rest(harness, "cai", "ok")
    assert sent_languages(fake_rasa, "rest-cai") == ["en"]


async def test_messages_stored_at_once_decide_one_after_the_other(harness, fake_rasa):
    """Weak messages stored while a clear switch commits never put the old language back (each
    decision reads the thread's language under a lock)."""
    await rest(harness, "ana", ES_QUESTION)
    await asyncio.gather(*(rest(harness, "ana", text)
                           for text in ["ok"] * 4 + [EN_QUESTION] + ["ok"] * 4))
    decided = fan_messages(harness)[1:]
    assert {lang for _, lang in decided} <= {"es", "en"}
    assert (EN_QUESTION, "en") in decided
    assert thread_language(harness) == "en"
    assert sorted(sent_languages(fake_rasa, "rest-ana")) == sorted(
        lang for _, lang in fan_messages(harness))


async def test_holding_reply_follows_the_decided_language(harness, fake_rasa):
    fake_rasa.mode = "refuse"
    replies = await rest(harness, "ana", ES_QUESTION)
    assert replies[0]["text"].startswith("Lo siento, ahora mismo no puedo responder")


async def test_the_inbox_and_the_staff_api_show_each_message_language(harness):
    await rest(harness, "ana", ES_QUESTION)
    await rest(harness, "ana", EN_QUESTION)
    conv_id = run_db(harness.services, lambda s: s.scalars(select(Conversation)).one().id)
    laura = await login(harness.client, "laura")  # a supervisor reads every thread
    ctx = (await harness.client.get(f"/api/v1/conversations/{conv_id}/context",
                                    headers=laura)).json()
    fan = [(t["text"], t["language"]) for t in ctx["transcript"] if t["kind"] == "incoming"]
    assert fan == [(ES_QUESTION, "es"), (EN_QUESTION, "en")]
    assert ctx["language"] == "en"
    detail = (await harness.client.get(f"/api/v1/conversations/{conv_id}",
                                       headers=laura)).json()
    assert [m["language"] for m in detail["messages"] if m["kind"] == "incoming"] == ["es", "en"]


async def test_webchat_greeting_follows_the_browser_then_the_fans_words(
        make_settings, pattern_triage, fake_rasa):
    server = LiveServer(make_settings(), triage=pattern_triage).start()
    sio = socketio.AsyncClient(reconnection=False)
    confirmed: asyncio.Queue = asyncio.Queue()
    sio.on("session_confirm", confirmed.put_nowait)
    try:
        await sio.connect(server.url, socketio_path="/socket.io/", transports=["websocket"])
        await sio.emit("session_request", {"session_id": "lang-session-0001",
                                           "customData": {"language": "es"}})
        await asyncio.wait_for(confirmed.get(), 5)
        for n, text in enumerate(("/greet", EN_QUESTION), start=1):
            await sio.emit("user_uttered", {"message": text, "session_id": "lang-session-0001",
                                            "customData": {"language": "es"}})
            await wait_for(lambda n=n: len(fake_rasa.calls) == n, 5)
    finally:
        await sio.disconnect()
        server.stop()
    # the widget's /greet has no words: the browser's language; then the fan's words decide
    assert sent_languages(fake_rasa, "webchat-lang-session-0001") == ["es", "en"]


# -- the rules, as a pure function --------------------------------------------------------------
@dataclass
class _Policy:
    min_words: int = 2
    min_confidence: float = 0.45


class _Guesser:
    policy = _Policy()

    def __init__(self, table: dict[str, dict[str, float]]) -> None:
        self.table = table

    def confidences(self, text: str) -> dict[str, float]:
        return self.table.get(text, {})


def test_detection_uses_triages_own_thresholds_and_skips_payloads():
    decider = LanguageDecider(lambda: _Guesser({
        "hola": {"es": 0.9}, "ok gracias": {"es": 0.7, "en": 0.1}, "la la": {"it": 0.3},
    }))
    assert decider.detect("hola") == Detection("es", False, 1, "es")  # one word: weak, leans es
    assert decider.detect("ok gracias") == Detection("es", True, 2)
    assert decider.detect("la la") == Detection("it", False, 2)  # low confidence: weak
    assert decider.detect("/greet") is NOTHING
    assert decider.detect("") is NOTHING
    assert LanguageDecider(lambda: None).detect("hola") is NOTHING  # triage not loaded yet


@pytest.mark.parametrize(
    ("detection", "current", "hint", "first", "expected"),
    [
        (Detection("es", True, 2), None, "en", True, "es"),  # a first message, on its own
        (Detection("es", True, 2), "en", "en", True, "es"),  # the hint never overrides it
        (NOTHING, None, "es", True, "es"),  # weak first message: the hint
        (NOTHING, "de", None, True, "de"),  # ... or the thread's (set at the session's start)
        (NOTHING, None, None, True, "en"),  # ... else English
        (NOTHING, "es", "en", False, "es"),  # later weak message: the thread's language
        (Detection("en", True, 2), "es", None, False, "es"),  # too short to switch
        (Detection("en", True, 5), "es", "es", False, "en"),  # a clear switch
        (Detection("en", False, 5), "es", None, False, "es"),  # not confident: no switch
    ],
)
def test_decision_rules(detection, current, hint, first, expected):
    decider = LanguageDecider(lambda: None)
    assert decider.decide(detection, current=current, hint=hint, first=first) == expected


def test_declared_languages_are_normalised():
    assert declared("es-ES") == "es" and declared("EN_gb") == "en" and declared("de") == "de"
    assert declared("es-419") == "es"
    assert declared("spanish") is None and declared(5) is None and declared("") is None


def test_a_weak_first_message_that_leans_clearly_is_answered_in_that_language():
    decider = LanguageDecider(lambda: _Guesser({
        "a q hora abre la sala principal": {"es": 0.36, "ca": 0.31, "it": 0.2, "en": 0.05},
        "hiya x": {"en": 0.3, "es": 0.28, "nl": 0.2},
    }))
    spanish = decider.detect("a q hora abre la sala principal")
    assert not spanish.confident and spanish.leaning == "es"  # Catalan counts as Spanish
    assert decider.decide(spanish, current=None, hint=None, first=True) == "es"
    assert decider.decide(spanish, current=None, hint="en", first=True) == "en"  # a hint wins
    assert decider.decide(spanish, current="de", hint=None, first=False) == "de"  # thread's
    unclear = decider.detect("hiya x")
    assert unclear.leaning is None
    assert decider.decide(unclear, current=None, hint=None, first=True) == "en"
