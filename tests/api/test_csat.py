"""Fan satisfaction after a person's conversation: the survey over REST (Rasa-style buttons),
Messenger (quick replies, against the fake Graph server) and web chat (socket.io); a score from
a button or a bare 1-5, the comment only as the next message, anything else to the bot, and who
is not surveyed."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select, update

from api.conversations.models import ChannelIdentity, Conversation, Message
from api.csat import texts
from api.csat.models import CsatResponse
from api.csat.service import score_payload
from api.enums import ConversationStatus, MessageKind, RelayStatus
from tests.api.conftest import _harness, go_online, login, run_db, wait_for
from tests.api.test_messenger import event, payload, post_signed
from tests.api.test_webchat import Widget

URL = "/webhooks/rest/webhook"
QUESTION = texts.QUESTION["en"]
SCORE_BUTTONS = [{"title": str(n), "payload": score_payload(n)} for n in range(1, 6)]
LOST_FRIEND = "I can't find my friend and she isn't answering"


async def say(h, sender, text):
    r = await h.client.post(URL, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


def survey(h, cid) -> CsatResponse | None:
    return run_db(h.services, lambda s: s.scalar(
        select(CsatResponse).where(CsatResponse.conversation_id == cid)))


def conversation(h, cid) -> Conversation:
    return run_db(h.services, lambda s: s.get(Conversation, cid))


def last_fan_message(h, cid) -> Message:
    return run_db(h.services, lambda s: s.scalars(
        select(Message).where(Message.conversation_id == cid,
                              Message.kind == MessageKind.incoming)
        .order_by(Message.id.desc())).first())


async def person_helped(h, sender, *, text="human please", handle="tom", reply=True,
                        offline_after=True, language=None) -> tuple[int, dict]:
    """A fan asks for a person, ``handle`` takes it, writes to the fan (``reply``) and resolves
    it; then goes offline (the fan's next message is the bot's, not continuity's)."""
    headers = await login(h.client, handle)
    await go_online(h.client, headers)
    replies = await say(h, sender, text)
    cid = replies[-1]["custom"]["handoff"]["conversation_id"]
    if reply:
        r = await h.client.post(f"/api/v1/conversations/{cid}/messages",
                                json={"text": "Hi, sorted: your tickets are in your email."},
                                headers=headers)
        assert r.status_code == 201, r.text
    if language:
        run_db(h.services, lambda s: (s.execute(update(Conversation).where(
            Conversation.id == cid).values(language=language)), s.commit()))
    r = await h.client.post(f"/api/v1/conversations/{cid}/resolve", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    if offline_after:
        await go_online(h.client, headers, "offline")
    return cid, headers


async def test_rest_score_button_then_the_comment(harness, fake_rasa):
    cid, _ = await person_helped(harness, "ana")
    assert survey(harness, cid).score is None
    # REST has no push: the question leads the next reply list, one item with Rasa-style
    # buttons, one per score; the message that collected it was written before the fan saw it
    replies = await say(harness, "ana", "thanks a lot")
    assert [r["text"] for r in replies] == ["Hi, sorted: your tickets are in your email.",
                                            QUESTION, "echo: thanks a lot"]
    assert replies[1] == {"recipient_id": "ana", "text": QUESTION, "buttons": SCORE_BUTTONS}
    calls = len(fake_rasa.calls)

    # a pressed score button: the score, then the comment prompt (with a "no, thanks" button)
    replies = await say(harness, "ana", score_payload(4))
    assert replies == [{"recipient_id": "ana", "text": texts.COMMENT["en"],
                        "buttons": [{"title": "No, thanks", "payload": "/csat_skip"}]}]
    # only the next message is the comment; neither reaches Rasa
    replies = await say(harness, "ana", "Tom was quick and kind")
    assert replies == [{"recipient_id": "ana", "text": texts.THANKS["en"]}]
    assert len(fake_rasa.calls) == calls
    answer = survey(harness, cid)
    tom = run_db(harness.services, lambda s: s.scalar(
        select(Message.staff_id).where(Message.conversation_id == cid,
                                       Message.staff_id.is_not(None))))
    assert (answer.score, answer.comment, answer.staff_id) == (4, "Tom was quick and kind", tom)
    assert answer.language == "en" and answer.channel.value == "rest"
    assert answer.answered_at <= answer.comment_at
    assert last_fan_message(harness, cid).relay_status == RelayStatus.skipped
    # a score button pressed again is thanked, changes nothing and never reaches Rasa
    replies = await say(harness, "ana", score_payload(1))
    assert replies == [{"recipient_id": "ana", "text": texts.THANKS_NO_COMMENT["en"]}]
    assert survey(harness, cid).score == 4 and len(fake_rasa.calls) == calls
    # the survey is over: the next message is the bot's again
    replies = await say(harness, "ana", "what time do doors open?")
    assert replies[-1]["text"] == "echo: what time do doors open?"
    assert survey(harness, cid).comment == "Tom was quick and kind"


async def test_rest_bare_five_then_no_comment(harness, fake_rasa):
    cid, _ = await person_helped(harness, "bea")
    await say(harness, "bea", "cheers")  # collects the question
    calls = len(fake_rasa.calls)
    replies = await say(harness, "bea", " 5 ")
    assert replies[0]["text"] == texts.COMMENT["en"]
    replies = await say(harness, "bea", "/csat_skip")  # the offered "No, thanks"
    assert replies == [{"recipient_id": "bea", "text": texts.THANKS_NO_COMMENT["en"]}]
    assert len(fake_rasa.calls) == calls
    answer = survey(harness, cid)
    assert (answer.score, answer.comment, answer.comment_at) == (5, None, None)
    # the inbox thread view shows it, and the pressed button reads as its title
    laura = await login(harness.client, "laura")
    ctx = (await harness.client.get(f"/api/v1/conversations/{cid}/context",
                                    headers=laura)).json()
    assert ctx["csat"]["score"] == 5 and ctx["csat"]["comment"] is None
    assert ctx["transcript"][-2]["text"] == "No, thanks"


async def test_a_question_instead_of_a_score_goes_to_the_bot_and_is_not_asked_again(
        harness, fake_rasa):
    cid, _ = await person_helped(harness, "cai")
    await say(harness, "cai", "ok")  # collects the question
    replies = await say(harness, "cai", "where can I park?")
    assert replies == [{"recipient_id": "cai", "text": "echo: where can I park?"}]
    # a "5" now is just a message for the bot: the survey was ignored and is closed
    replies = await say(harness, "cai", "5")
    assert replies == [{"recipient_id": "cai", "text": "echo: 5"}]
    assert survey(harness, cid).score is None
    # handed to a person again and resolved again: not asked a second time
    await person_helped(harness, "cai")
    replies = await say(harness, "cai", "thanks again")
    assert QUESTION not in [r.get("text") for r in replies]
    assert run_db(harness.services, lambda s: len(s.scalars(select(CsatResponse)).all())) == 1


async def test_rest_a_five_written_before_the_fan_saw_the_question_is_not_a_score(
        harness, fake_rasa):
    cid, _ = await person_helped(harness, "jon")
    replies = await say(harness, "jon", "5")  # collects the question: the fan had not seen it
    assert [r["text"] for r in replies][1:] == [QUESTION, "echo: 5"]
    assert survey(harness, cid).score is None
    replies = await say(harness, "jon", "4")  # now they have
    assert replies[0]["text"] == texts.COMMENT["en"]
    assert survey(harness, cid).score == 4


async def test_a_survey_expires_after_a_day(harness, fake_rasa):
    cid, _ = await person_helped(harness, "kim")
    await say(harness, "kim", "ok")
    day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    run_db(harness.services, lambda s: (s.execute(update(Message).where(
        Message.conversation_id == cid, Message.kind == MessageKind.outgoing).values(
        created_at=day_ago)), s.commit()))
    replies = await say(harness, "kim", "5")
    assert replies == [{"recipient_id": "kim", "text": "echo: 5"}]
    assert survey(harness, cid).score is None


@pytest.mark.parametrize("text", ["5 stars", "10", "4.5", '/csat{"score":9}', "/csat"])
async def test_only_a_button_or_a_bare_score_counts(harness, fake_rasa, text):
    cid, _ = await person_helped(harness, "dan")
    await say(harness, "dan", "ok")
    replies = await say(harness, "dan", text)
    assert texts.COMMENT["en"] not in [r.get("text") for r in replies]
    assert survey(harness, cid).score is None
    assert last_fan_message(harness, cid).relay_status != RelayStatus.skipped


@pytest.mark.parametrize("language", ["es", "de"])
async def test_the_fan_is_asked_in_their_language(harness, fake_rasa, language):
    cid, _ = await person_helped(harness, f"fan-{language}", language=language)
    replies = await say(harness, f"fan-{language}", "ok")
    assert replies[1]["text"] == texts.QUESTION[language]
    replies = await say(harness, f"fan-{language}", "2")
    assert replies[0]["text"] == texts.COMMENT[language]
    assert replies[0]["buttons"][0]["title"] == texts.NO_COMMENT[language]
    assert survey(harness, cid).language == language


# -- who is not surveyed ---------------------------------------------------------------------
async def test_not_surveyed_when_no_person_wrote(harness, fake_rasa):
    cid, _ = await person_helped(harness, "fay", reply=False)
    assert survey(harness, cid) is None
    replies = await say(harness, "fay", "hello?")
    assert QUESTION not in [r.get("text") for r in replies]


async def test_not_surveyed_after_a_safety_emergency(harness, fake_rasa):
    noor = await login(harness.client, "noor")
    await go_online(harness.client, noor)
    replies = await say(harness, "gus", LOST_FRIEND)
    cid = replies[-1]["custom"]["handoff"]["conversation_id"]
    r = await harness.client.post(f"/api/v1/conversations/{cid}/messages",
                                  json={"text": "Noor here, where are you?"}, headers=noor)
    assert r.status_code == 201
    r = await harness.client.post(f"/api/v1/conversations/{cid}/resolve", headers=noor)
    assert r.status_code == 200
    assert survey(harness, cid) is None


async def test_not_surveyed_when_surveys_are_off(make_settings, triage_engine, clock,
                                                 fake_rasa):
    async for h in _harness(make_settings(CSAT_ENABLED=False), triage=triage_engine,
                            clock=clock, timers=False):
        cid, _ = await person_helped(h, "hal")
        assert survey(h, cid) is None


async def test_not_surveyed_when_the_fan_was_surveyed_recently(harness, fake_rasa):
    """A fan with another conversation surveyed within CSAT_REPEAT_DAYS is not asked again."""
    first, _ = await person_helped(harness, "ivy")
    assert survey(harness, first) is not None

    def new_conversation(s):  # the same fan, a later conversation (as after a long silence)
        old = s.get(Conversation, first)
        c = Conversation(fan_id=old.fan_id, identity_id=old.identity_id, channel=old.channel,
                         status=ConversationStatus.bot, reasons=[])
        s.add(c)
        s.commit()
        return c.id

    second = run_db(harness.services, new_conversation)
    cid, _ = await person_helped(harness, "ivy")
    assert cid == second and survey(harness, second) is None
    # a month later they would be asked again
    run_db(harness.services, lambda s: (s.execute(update(CsatResponse).values(
        asked_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=31))), s.commit()))
    third = run_db(harness.services, new_conversation)
    cid, _ = await person_helped(harness, "ivy")
    assert cid == third and survey(harness, third) is not None


# -- Messenger ---------------------------------------------------------------------------------
async def _messenger_person_helped(h, fake_graph, psid) -> int:
    tom = await login(h.client, "tom")
    await go_online(h.client, tom)
    r = await post_signed(h.client, payload({"messaging": [event(psid=psid, mid=f"{psid}-1",
                                                                  text="human please")]}))
    assert r.status_code == 200
    await wait_for(lambda: len(fake_graph.messages()) >= 2)
    [cid] = [c["id"] for c in (await h.client.get("/api/v1/conversations?assignee=me",
                                                  headers=tom)).json()]
    r = await h.client.post(f"/api/v1/conversations/{cid}/messages",
                            json={"text": "Tom here: done!"}, headers=tom)
    assert r.status_code == 201
    return cid, tom


async def test_messenger_quick_replies_and_a_quick_reply_answer(messenger_harness, fake_graph,
                                                                fake_rasa):
    h = messenger_harness
    cid, tom = await _messenger_person_helped(h, fake_graph, "psid-c1")
    r = await h.client.post(f"/api/v1/conversations/{cid}/resolve", headers=tom)
    assert r.status_code == 200
    body = fake_graph.messages()[-1]["body"]
    assert body["message"]["text"] == QUESTION
    assert body["message"]["quick_replies"] == [
        {"content_type": "text", "title": str(n), "payload": score_payload(n)}
        for n in range(1, 6)]
    assert body["messaging_type"] == "RESPONSE" and "tag" not in body  # never a message tag
    calls = len(fake_rasa.calls)
    sent = len(fake_graph.messages())
    r = await post_signed(h.client, payload({"messaging": [event(
        psid="psid-c1", mid="c1-2", text="3",
        quick_reply={"payload": score_payload(3)})]}))
    assert r.status_code == 200
    await wait_for(lambda: len(fake_graph.messages()) > sent)
    assert fake_graph.messages()[-1]["body"]["message"]["text"] == texts.COMMENT["en"]
    r = await post_signed(h.client, payload({"messaging": [event(
        psid="psid-c1", mid="c1-3", text="could have been faster")]}))
    await wait_for(lambda: len(fake_graph.messages()) > sent + 1)
    assert fake_graph.messages()[-1]["body"]["message"]["text"] == texts.THANKS["en"]
    answer = survey(h, cid)
    assert (answer.score, answer.comment) == (3, "could have been faster")
    assert answer.channel.value == "messenger"
    assert len(fake_rasa.calls) == calls
    assert conversation(h, cid).status == ConversationStatus.resolved


async def test_messenger_not_surveyed_outside_the_24_hour_window(messenger_harness, fake_graph,
                                                                 fake_rasa):
    h = messenger_harness
    cid, tom = await _messenger_person_helped(h, fake_graph, "psid-c2")
    then = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    run_db(h.services, lambda s: (s.execute(update(ChannelIdentity).values(
        last_inbound_at=then)), s.commit()))
    sent = len(fake_graph.messages())
    r = await h.client.post(f"/api/v1/conversations/{cid}/resolve", headers=tom)
    assert r.status_code == 200
    assert survey(h, cid) is None and len(fake_graph.messages()) == sent


# -- web chat (the widget's socket.io protocol; the real widget: test_csat_browser.py) --------
async def test_webchat_quick_replies_and_a_pressed_score(live_server, fake_rasa):
    widget = Widget(live_server.url)
    await widget.connect()
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as staff:
        tom = await login(staff, "tom")
        await go_online(staff, tom)
        sid = await widget.session("csat-web-1")
        await widget.say("human please", sid)
        await widget.next(timeout=20)  # the bot's words
        handoff = (await widget.next(timeout=20))["metadata"]["handoff"]
        cid = handoff["conversation_id"]
        r = await staff.post(f"/api/v1/conversations/{cid}/messages", headers=tom,
                             json={"text": "Done!"})
        assert r.status_code == 201
        await widget.next(timeout=20)  # Tom's message
        assert (await staff.post(f"/api/v1/conversations/{cid}/resolve",
                                 headers=tom)).status_code == 200
        assert await widget.next(timeout=20) == {"text": QUESTION, "quick_replies": [
            {"content_type": "text", "title": str(n), "payload": score_payload(n)}
            for n in range(1, 6)]}
        calls = len(fake_rasa.calls)
        await widget.say(score_payload(2), sid)  # the widget sends a pressed reply's payload
        assert (await widget.next(timeout=20))["text"] == texts.COMMENT["en"]
        await widget.say("the queue was long", sid)
        assert await widget.next(timeout=20) == {"text": texts.THANKS["en"]}
        assert len(fake_rasa.calls) == calls
    await widget.close()
    answer = run_db(live_server.app.state.services, lambda s: s.scalar(
        select(CsatResponse).where(CsatResponse.conversation_id == cid)))
    assert (answer.score, answer.comment, answer.channel.value) == (2, "the queue was long",
                                                                    "webchat")
