"""Answers in the fan's language end to end, with the real Rasa + action servers and triage.

A Spanish-speaking fan on Messenger asks, informally, whether the club is open tonight, what the
ticket costs and to talk to someone: every answer Meta's (fake) Graph API is asked to send is the
Spanish text of data/answers.yml, right about tonight on the bot's frozen clock, and the person
she is handed to writes Spanish (an online colleague who does not, and who would win every other
tie, is passed over). A German fan asking when we open today gets the German answer.

Tonight: the bot's clock is frozen at BOT_FROZEN_NOW (Thursday 15 July 2027, 02:00, Madrid). A
night runs until 07:00 the next morning, so "tonight" is still Wednesday 14 July's night: the
weekly Wednesday night of data/venue.yml (no special event that day).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, DeliveryStatus, MessageKind, RelayStatus
from api.staff.models import Staff
from tests.api.conftest import (
    APP_SECRET,
    BOT_FROZEN_NOW,
    PAGE_TOKEN,
    VERIFY_TOKEN,
    LiveServer,
    go_online,
    login,
    run_db,
)
from tests.api.test_messenger import event, payload, post_signed

pytestmark = pytest.mark.rasa

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = yaml.safe_load((ROOT / "data" / "answers.yml").read_text(encoding="utf-8"))["answers"]
VENUE = yaml.safe_load((ROOT / "data" / "venue.yml").read_text(encoding="utf-8"))
REST = "/webhooks/rest/webhook"

# -- tonight, from the fact sheet --------------------------------------------------------------
FROZEN = dt.datetime.fromisoformat(BOT_FROZEN_NOW)
assert FROZEN.hour < 7  # still the night that began the evening before
TONIGHT = FROZEN.date() - dt.timedelta(days=1)
assert TONIGHT == dt.date(2027, 7, 14)
assert not [e for e in VENUE["special_events"] if e["date"] == TONIGHT]
NIGHT = VENUE["weekly_nights"]["wednesday"]  # 14 July 2027 is a Wednesday
NIGHT_NAME = NIGHT["name"]  # Foam & Fire
DOORS = VENUE["opening_hours"]["doors"]  # 23:30
LAST_ENTRY = VENUE["opening_hours"]["last_entry"]  # 03:30
TONIGHT_ES = "miércoles 14 de julio"
PRICE_ONLINE_ES = f"{NIGHT['ticket_online']} € online"  # 50 € online
PRICE_DOOR_ES = f"{NIGHT['ticket_door']} € en taquilla"  # 65 € en taquilla

# Answer keys that can answer each question (actions/replies.py picks one by the night).
ARE_YOU_OPEN_KEYS = ("are_you_open_yes", "night_weekly", "night_event", "opening_hours")
TICKET_KEYS = ("ticket_prices_date_weekly", "ticket_prices_date_event", "ticket_prices_weekday",
               "ticket_prices_overview")
PERSON_KEYS = ("request_human",)
GERMAN_HOURS_KEYS = ("opening_hours", "are_you_open_yes", "night_weekly")

# English words that must not be left in a Spanish or German sentence (as tests/bot checks the
# templates; the facts said here have none of them).
ENGLISH_WORDS = re.compile(r"\b(the|and|you|your|we|our|is|are|at|for|to|of|on|with)\b",
                           re.IGNORECASE)
# The switchboard's own English texts (api/handoff/texts.py) a Spanish fan must never get.
ENGLISH_SWITCHBOARD = ("I'm passing you to", "will answer here within", "This needs a person",
                       "handed you back to me", "nobody from the team is online")

# Staff (data/staff.yml): Tom writes English and German, Giulia Italian, English and Spanish.
# Both take "general" threads; Tom comes first in staff.yml (lower id), so only the language
# rule can make routing pick Giulia.
SPANISH_WRITER = "giulia"
NO_SPANISH = "tom"


def texts_of(key: str, language: str) -> list[str]:
    variants = ANSWERS[key].get(language) or []
    return [variants] if isinstance(variants, str) else list(variants)


def template_regex(template: str) -> re.Pattern[str]:
    """The template with every {placeholder} standing for any text: a filled answer matches."""
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


def matching_key(text: str, keys: tuple[str, ...], language: str) -> str | None:
    """The first of ``keys`` whose ``language`` text the reply is (filled with facts)."""
    for key in keys:
        if any(template_regex(t).fullmatch(text) for t in texts_of(key, language)):
            return key
    return None


def english_fragments() -> list[str]:
    """Every run of at least three words written in an English answer text (outside its
    placeholders): an answer in Spanish or German contains none of them."""
    fragments = set()
    for key in ANSWERS:
        for template in texts_of(key, "en"):
            for part in re.split(r"\{[a-z_]+\}", template):
                part = part.strip(" .,:;!?()—-–\n")
                if len(part.split()) >= 3:
                    fragments.add(part)
    return sorted(fragments)


ENGLISH_FRAGMENTS = english_fragments()


def assert_not_english(text: str) -> None:
    assert not ENGLISH_WORDS.search(text), f"English word in {text!r}"
    found = [f for f in ENGLISH_FRAGMENTS if f in text]
    assert not found, f"English answer text {found} in {text!r}"
    assert not any(s in text for s in ENGLISH_SWITCHBOARD), text
    for language in ("es", "de"):  # the line said before an answer that fell back to English
        for notice in texts_of("not_in_your_language", language):
            assert notice.rstrip(":") not in text, text


# -- Messenger against the real bot ------------------------------------------------------------
@pytest.fixture
def messenger_switchboard(bot_settings, triage_engine, fake_graph):
    settings = bot_settings(
        MESSENGER_APP_SECRET=APP_SECRET, MESSENGER_VERIFY_TOKEN=VERIFY_TOKEN,
        MESSENGER_PAGE_TOKEN=PAGE_TOKEN, MESSENGER_GRAPH_URL=fake_graph.url + "/v23.0")
    server = LiveServer(settings, triage=triage_engine).start()
    yield server
    server.stop()


@pytest.fixture
def rest_switchboard(bot_settings, triage_engine):
    server = LiveServer(bot_settings(), triage=triage_engine).start()
    yield server
    server.stop()


def _turn_done(services, mid: str) -> int | None:
    """The number of replies of the fan's message ``mid`` once its turn is over (its bot turn
    ran or a person holds the thread, and every reply went out), else None."""

    def check(s):
        incoming = s.scalars(select(Message).where(Message.fan_message_id == mid)).first()
        if incoming is None or incoming.relay_status in (None, RelayStatus.pending):
            return None
        outgoing = s.scalars(select(Message).where(
            Message.conversation_id == incoming.conversation_id,
            Message.kind == MessageKind.outgoing)).all()
        if any(m.delivery_status in (None, DeliveryStatus.pending) for m in outgoing):
            return None
        return len(outgoing)

    return run_db(services, check)


async def say_on_messenger(server: LiveServer, client: httpx.AsyncClient, fake_graph,
                           psid: str, mid: str, text: str, timeout: float = 90) -> list[str]:
    """Send a signed Messenger event; return the texts the Send API was asked to deliver for
    it, once the turn is over (the bot answered or a person holds the thread) and quiet."""
    before = len(fake_graph.messages())
    r = await post_signed(client, payload({"messaging": [event(psid, mid, text)]}))
    assert r.status_code == 200 and r.text == "EVENT_RECEIVED", r.text
    services = server.app.state.services
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        sent = _turn_done(services, mid)
        if sent is not None and len(fake_graph.messages()) >= sent:
            await asyncio.sleep(0.5)  # nothing else follows
            if _turn_done(services, mid) == sent and len(fake_graph.messages()) == sent:
                break
        assert asyncio.get_running_loop().time() < deadline, f"no answer to {text!r}"
        await asyncio.sleep(0.1)
    calls = fake_graph.messages()[before:]
    assert all(c["body"]["recipient"] == {"id": psid} for c in calls)
    return [c["body"]["message"]["text"] for c in calls]


async def test_spanish_fan_on_messenger_answered_in_spanish_and_handed_to_a_spanish_writer(
        messenger_switchboard, fake_graph):
    server, psid = messenger_switchboard, "psid-es-1"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        for handle in (NO_SPANISH, SPANISH_WRITER):
            await go_online(client, await login(client, handle))

        open_tonight = await say_on_messenger(server, client, fake_graph, psid, "m-es-1",
                                              "ey abris esta noche?")
        price = await say_on_messenger(server, client, fake_graph, psid, "m-es-2",
                                       "y cuanto cuesta la entrada?")
        person = await say_on_messenger(server, client, fake_graph, psid, "m-es-3",
                                        "puedo hablar con alguien del equipo?")

    # Every text the fan was sent is Spanish.
    for text in open_tonight + price + person:
        assert_not_english(text)

    # 1. Open tonight: yes, in Spanish, with tonight's night, date and doors time.
    [answer] = open_tonight
    assert matching_key(answer, ARE_YOU_OPEN_KEYS, "es"), answer
    assert NIGHT_NAME in answer and TONIGHT_ES in answer, answer
    assert f"las {DOORS}" in answer and f"las {LAST_ENTRY}" in answer, answer

    # 3. A person: the bot (if it answered) says so in Spanish, and the handoff text is Spanish
    # and names the Spanish writer, who owns the thread.
    *bot_said, handoff_text = person
    for text in bot_said:
        assert matching_key(text, PERSON_KEYS, "es"), text
    assert handoff_text.startswith("Te paso con Giulia"), handoff_text
    assert "te responderá aquí" in handoff_text, handoff_text
    assert "Tom" not in handoff_text

    def thread(s):
        first = s.scalars(select(Message).where(Message.fan_message_id == "m-es-1")).one()
        conversation = s.get(Conversation, first.conversation_id)
        fan = s.scalars(select(Message).where(
            Message.conversation_id == conversation.id,
            Message.kind == MessageKind.incoming).order_by(Message.id)).all()
        assignee = s.get(Staff, conversation.assignee_id) if conversation.assignee_id else None
        ids = {h: s.scalars(select(Staff.id).where(Staff.handle == h)).one()
               for h in (NO_SPANISH, SPANISH_WRITER)}
        return (conversation.status, conversation.language, [m.language for m in fan],
                assignee and (assignee.handle, assignee.languages), ids)

    status, language, fan_languages, assignee, ids = run_db(server.app.state.services, thread)
    assert fan_languages == ["es", "es", "es"]
    assert language == "es" and status == ConversationStatus.assigned
    assert assignee is not None and assignee[0] == SPANISH_WRITER and "es" in assignee[1]
    assert ids[NO_SPANISH] < ids[SPANISH_WRITER]  # every other tie-break favoured Tom

    # 2. The ticket price: Spanish, and tonight's (the fan asked right after "esta noche").
    [answer] = price
    assert matching_key(answer, TICKET_KEYS, "es"), answer
    assert NIGHT_NAME in answer and PRICE_ONLINE_ES in answer and PRICE_DOOR_ES in answer, (
        f"the price answer is not tonight's ({NIGHT_NAME}: {PRICE_ONLINE_ES}, "
        f"{PRICE_DOOR_ES}): {answer!r}")


async def test_german_fan_asking_when_we_open_today_gets_the_german_answer(rest_switchboard):
    async with httpx.AsyncClient(base_url=rest_switchboard.url, timeout=60) as client:
        r = await client.post(REST, json={"sender": "e2e-de-1",
                                          "message": "wann macht ihr heute auf?"})
    assert r.status_code == 200, r.text
    replies = r.json()
    assert not any("custom" in item for item in replies), replies  # the bot answers
    texts = [item.get("text") or "" for item in replies]
    assert texts, replies
    for text in texts:
        assert_not_english(text)
    assert any(matching_key(t, GERMAN_HOURS_KEYS, "de") for t in texts), texts
    assert any(f"Einlass ab {DOORS} Uhr" in t or f"Einlass {DOORS} Uhr" in t for t in texts), texts
