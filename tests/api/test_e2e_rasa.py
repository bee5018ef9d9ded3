"""End to end with the real Rasa and action servers (a trained model is required).

The bot's answers come from the venue facts (data/venue.yml) through the real model and actions;
the bot's clock is frozen in the season (``conftest.BOT_FROZEN_NOW``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.conversations.models import Conversation, Message
from api.enums import ConversationStatus, MessageKind, RelayStatus, SenderType
from api.lost_property.models import LostPropertyReport
from tests.api.conftest import BOT_FROZEN_NOW, REPO_ROOT, LiveServer, run_db
from tests.api.test_webchat import Widget

pytestmark = pytest.mark.rasa

REST = "/webhooks/rest/webhook"
GREETINGS = ("Hey!", "Hi there!")
HOLDING = "Sorry, I can't answer right now."
FAN_KEYS = {"recipient_id", "text", "buttons", "image"}


@pytest.fixture
def switchboard(bot_settings, triage_engine) -> Iterator[LiveServer]:
    server = LiveServer(bot_settings(), triage=triage_engine).start()
    yield server
    server.stop()


def say(http: httpx.Client, url: str, sender: str, text: str) -> list[dict]:
    r = http.post(url + REST, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


def texts(items: list[dict]) -> str:
    return "\n".join(i.get("text") or "" for i in items)


def incoming(server: LiveServer) -> list[Message]:
    return run_db(server.app.state.services, lambda s: s.scalars(
        select(Message).where(Message.kind == MessageKind.incoming).order_by(Message.id)).all())


def test_rest_through_switchboard_matches_rasa(real_bot, switchboard):
    with httpx.Client(timeout=60) as http:
        health = http.get(f"{switchboard.url}/healthz")
        assert health.status_code == 200, health.text
        ours = say(http, switchboard.url, "e2e-fan", "hello")
        direct = say(http, real_bot.rasa_url, "e2e-direct", "hello")
        assert ours and all(item["recipient_id"] == "e2e-fan" for item in ours)
        assert all("text" in i or "buttons" in i or "image" in i for i in ours)
        assert {tuple(sorted(i)) for i in ours} == {tuple(sorted(i)) for i in direct}
        assert ours[0]["text"].startswith(GREETINGS), ours
        tracker = http.get(f"{real_bot.rasa_url}/conversations/rest-e2e-fan/tracker",
                           params={"token": real_bot.token}).json()

    [msg] = incoming(switchboard)
    assert msg.relay_status == RelayStatus.answered
    assert msg.intent == "greet" and msg.intent_confidence is not None
    users = [e for e in tracker["events"] if e.get("event") == "user"]
    assert [e.get("message_id") for e in users] == [msg.uid]


def test_ticket_price_comes_from_the_venue_facts(switchboard):
    with httpx.Client(timeout=60) as http:
        replies = say(http, switchboard.url, "e2e-prices", "how much is friday?")
    answer = texts(replies)
    assert "Casa Aurora" in answer and "50 €" in answer, replies
    assert all(set(i) <= FAN_KEYS for i in replies), replies
    [msg] = incoming(switchboard)
    assert msg.relay_status == RelayStatus.answered
    assert msg.intent and msg.intent_confidence is not None


async def test_webchat_fan_gets_the_dress_code(switchboard):
    widget = Widget(switchboard.url)
    await widget.connect()
    try:
        sid = await widget.session("e2e-dress-code-session")
        await widget.say("what's the dress code", sid)
        reply = await widget.next(timeout=60)
        assert "Smart casual" in reply["text"], reply
    finally:
        await widget.close()
    [msg] = incoming(switchboard)
    assert msg.channel.value == "webchat" and msg.relay_status == RelayStatus.answered


async def test_handoff_request_is_stored_and_never_shown(real_bot, switchboard):
    # Straight from Rasa the turn carries the machine-readable custom item ...
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(real_bot.rasa_url + REST,
                            json={"sender": "e2e-handoff-direct",
                                  "message": "i want to talk to a person"})
    direct = r.json()
    assert any("handoff_request" in (i.get("custom") or {}) for i in direct), direct

    # ... through the switchboard the fan sees only the words.
    widget = Widget(switchboard.url)
    await widget.connect()
    seen: list[dict] = []
    try:
        sid = await widget.session("e2e-handoff-session-01")
        await widget.say("i want to talk to a person", sid)
        seen.append(await widget.next(timeout=60))
        with pytest.raises(asyncio.TimeoutError):
            while True:  # collect anything else the turn sends
                seen.append(await widget.next(timeout=1.0))
    finally:
        await widget.close()
    assert seen and all(set(p) <= {"text", "quick_replies", "attachment", "metadata"}
                        for p in seen), seen
    assert all(p.get("text") for p in seen if "attachment" not in p)
    assert "handoff_request" not in repr(seen) and "custom" not in repr(seen)
    # the bot's words first, then the handoff (nobody is online here: queued, honestly)
    assert "metadata" not in seen[0] and seen[-1]["metadata"]["handoff"]["status"] == "queued"

    def check(s):
        conv = s.scalars(select(Conversation)).one()
        assert conv.handoff_request and conv.handoff_request["topic"] == "general"
        msgs = s.scalars(select(Message).where(Message.conversation_id == conv.id)).all()
        activities = [m for m in msgs if m.kind == MessageKind.activity]
        assert any("handoff_request" in (m.payload or {}) for m in activities)
        outgoing = [m for m in msgs if m.kind == MessageKind.outgoing]
        assert outgoing and outgoing[0].sender_type == SenderType.bot
        assert outgoing[-1].sender_type == SenderType.system  # the handoff text
        assert all("custom" not in (m.payload or {}) for m in outgoing)
        [fan] = [m for m in msgs if m.kind == MessageKind.incoming]
        assert fan.intent == "request_human"

    run_db(switchboard.app.state.services, check)


def test_lost_property_form_ends_in_a_stored_report(switchboard):
    turns = ["i lost my phone", "a black iphone 13", "saturday around 4am",
             "cracked screen, green case", "fan@example.com"]
    with httpx.Client(timeout=60) as http:
        answers = [say(http, switchboard.url, "e2e-lost", text) for text in turns]
    for replies in answers:
        assert replies and all(set(i) <= FAN_KEYS for i in replies), answers
        assert "lost_property" not in repr(replies)

    def check(s):
        report = s.scalars(select(LostPropertyReport)).one()
        conv = s.get(Conversation, report.conversation_id)
        assert conv.identity.external_id == "e2e-lost"
        return report

    report = run_db(switchboard.app.state.services, check)
    assert "iphone" in (report.item or "").lower(), report.item
    assert "saturday" in (report.lost_when or "").lower(), report.lost_when
    assert "green" in (report.description or "").lower(), report.description
    assert report.contact == "fan@example.com"
    assert report.message_id == incoming(switchboard)[-1].id
    fan_messages = [m for m in incoming(switchboard) if m.conversation_id == report.conversation_id]
    assert all(m.relay_status == RelayStatus.answered for m in fan_messages)
    # Free-text answers parse badly by nature; the channel says the form was asking, so they
    # never count as "the bot did not understand" and the fan stays with the bot.
    assert [m.parse.get("active_loop") for m in fan_messages[1:]] == ["lost_property_form"] * 4
    status = run_db(switchboard.app.state.services,
                    lambda s: s.get(Conversation, report.conversation_id).status)
    assert status == ConversationStatus.bot


def test_the_bot_not_understanding_twice_hands_off(switchboard):
    """Repeated fallback is a handoff trigger; the bot's own offer of a person is superseded."""
    with httpx.Client(timeout=60) as http:
        first = say(http, switchboard.url, "e2e-lost-bot", "what's the capital of australia")
        second = say(http, switchboard.url, "e2e-lost-bot", "can you do my maths homework")
    assert "another way" in " ".join(i.get("text", "") for i in first)
    assert not any(i.get("buttons") for i in second), second
    handoff = next(i["custom"]["handoff"] for i in second if "custom" in i)
    assert handoff["status"] in ("assigned", "queued")
    assert any("did not understand" in reason for reason in handoff["reasons"])


# -- Rasa killed mid-test ---------------------------------------------------------------------

def _restart_rasa(bot, log: Path) -> subprocess.Popen:
    """A new Rasa on the killed one's port, with the same model, token and tracker store."""
    from tests.support.rasa_servers import VENV_BOT, wait_until

    port = bot.rasa_url.rsplit(":", 1)[1]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "ACTION_ENDPOINT_URL": f"{bot.actions_url}/webhook",
           "RASA_TRACKER_DB": str(bot.log_dir / "tracker.db")}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(VENV_BOT / "rasa"), "run", "--enable-api", "--auth-token", bot.token,
             "--port", port, "--interface", "127.0.0.1", "--model", str(bot.model),
             "--credentials", "credentials.yml", "--endpoints", "endpoints.yml"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(f"{bot.rasa_url}/status?token={bot.token}", 240, proc, log,
                   ready=lambda body: b"model_file" in body)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def _gone(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=1)
        except httpx.TransportError:
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} still answers after SIGKILL")


def test_real_rasa_killed_mid_conversation(make_settings, triage_engine, tmp_path):
    """Rasa dies: holding reply, message kept; Rasa comes back: answered once, in order."""
    from tests.support.rasa_servers import start_bot_servers

    with start_bot_servers(frozen_now=BOT_FROZEN_NOW) as bot:
        server = LiveServer(make_settings(
            RASA_URL=bot.rasa_url, RASA_TOKEN=bot.token, ACTION_SERVER_URL=bot.actions_url,
            RASA_TIMEOUT_S=30, RELAY_RETRY_BASE_S=0.5, RELAY_RETRY_MAX_S=1.0, RELAY_POLL_S=0.2,
        ), triage=triage_engine).start()
        restarted = None
        try:
            with httpx.Client(timeout=60) as http:
                assert texts(say(http, server.url, "e2e-kill", "hello")).startswith(GREETINGS)

                os.kill(bot.rasa_pid, signal.SIGKILL)
                _gone(bot.rasa_url)
                held = say(http, server.url, "e2e-kill", "how much is friday?")
                assert len(held) == 1 and held[0]["text"].startswith(HOLDING), held
                pending = incoming(server)[-1]
                assert pending.relay_status == RelayStatus.pending
                assert pending.relay_error == "unreachable"
                health = http.get(server.url + "/healthz")
                assert health.status_code == 503, health.text

                restarted = _restart_rasa(bot, tmp_path / "rasa-restarted.log")
                deadline = time.monotonic() + 60
                while incoming(server)[-1].relay_status != RelayStatus.answered:
                    assert time.monotonic() < deadline, "the kept message was never answered"
                    time.sleep(0.2)
                assert http.get(server.url + "/healthz").status_code == 200

                # REST has no push: the late answer leads the fan's next response, once.
                later = say(http, server.url, "e2e-kill", "thanks")
                assert "Casa Aurora" in later[0]["text"] and "50 €" in later[0]["text"], later
                again = say(http, server.url, "e2e-kill", "thanks!")
                assert "Casa Aurora" not in texts(again), again
                tracker = http.get(f"{bot.rasa_url}/conversations/rest-e2e-kill/tracker",
                                   params={"token": bot.token}).json()
        finally:
            server.stop()
            if restarted is not None:
                restarted.terminate()
                try:
                    restarted.wait(20)
                except subprocess.TimeoutExpired:
                    restarted.kill()
                    restarted.wait()

    msgs = incoming(server)
    assert [m.relay_status for m in msgs] == [RelayStatus.answered] * 4
    assert msgs[1].relay_attempts >= 2
    ids = [e.get("message_id") for e in tracker["events"] if e.get("event") == "user"]
    assert ids.count(msgs[1].uid) == 1  # sent to the bot exactly once
