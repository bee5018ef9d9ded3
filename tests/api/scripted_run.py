"""A scripted evening against a live switchboard and the fake Rasa, for the metrics and log
tests: REST and web chat fans, one Rasa outage (a holding reply, then the retry), a safety
handoff answered by a person, and a handoff the bot asks for. It returns what was sent, so the
tests can check the figures and the logs against it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from api.conversations.models import ChannelIdentity, Conversation, Message
from api.enums import RelayStatus
from tests.api.conftest import go_online, login, run_db
from tests.api.test_webchat import Widget

URL = "/webhooks/rest/webhook"
# Words no log line may ever show: every fan message carries one of these.
SECRET_WORD = "zanzibar"
LOST_FRIEND = f"I can't find my friend {SECRET_WORD}lyn and she isn't answering"
ROUTINE = (f"hello, what time do the doors open at {SECRET_WORD} hall?",
           f"thanks! is there a cloakroom near the {SECRET_WORD} entrance?")


@dataclass
class Sent:
    fan_messages: dict[str, int] = field(default_factory=lambda: {"rest": 0, "webchat": 0})
    texts: list[str] = field(default_factory=list)  # every fan message, word for word
    rest_replies: int = 0  # reply items REST fans received in their responses
    webchat_replies: int = 0  # bot_uttered events the widgets received
    # X-Request-ID of each REST call, with the conversation it was for (filled in at the end)
    requests: dict[str, str] = field(default_factory=dict)  # request id -> REST sender
    conversations: dict[str, int] = field(default_factory=dict)  # REST sender -> conversation
    handoffs: dict[tuple[str, str], int] = field(default_factory=dict)  # (trigger, topic) -> n
    first_replies: int = 0
    rasa_errors: int = 0
    holding_replies: int = 0
    bot_turns: int = 0


async def _rest(client: httpx.AsyncClient, sent: Sent, sender: str, text: str) -> list:
    request_id = f"lb-{sender}-{len(sent.requests)}"
    r = await client.post(URL, json={"sender": sender, "message": text},
                          headers={"X-Request-ID": request_id})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == request_id  # passed through from the balancer
    sent.requests[request_id] = sender
    sent.fan_messages["rest"] += 1
    sent.texts.append(text)
    sent.rest_replies += len(r.json())
    return r.json()


def _conversation_of(services, external_id: str) -> int:
    return run_db(services, lambda s: s.scalar(
        select(Conversation.id)
        .join(ChannelIdentity, Conversation.identity_id == ChannelIdentity.id)
        .where(ChannelIdentity.external_id == external_id)))


async def _until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def scripted_run(server, fake_rasa) -> Sent:
    services = server.app.state.services
    sent = Sent()
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        noor = await login(client, "noor")
        await go_online(client, noor)
        # Three REST fans the bot handles alone.
        for fan in ("rest-1", "rest-2", "rest-3"):
            for text in ROUTINE:
                replies = await _rest(client, sent, fan, text)
                assert replies[-1]["text"].startswith("echo:"), replies
                sent.bot_turns += 1
        # A safety matter: the bot never sees it; Noor (welfare, online) gets it and answers.
        replies = await _rest(client, sent, "rest-4", LOST_FRIEND)
        assert replies[0]["custom"]["handoff"]["topic"] == "lost_person"
        sent.handoffs[("safety", "lost_person")] = 1
        cid = _conversation_of(services, "rest-4")
        r = await client.post(f"/api/v1/conversations/{cid}/messages", headers=noor,
                              json={"text": "Hi, I'm Noor. Where did you last see her?"})
        assert r.status_code == 201 and r.json()["first_response"] is True
        sent.first_replies += 1
        # Rasa fails once: a holding reply; the retry answers when it is back.
        fake_rasa.mode = "error"
        outage = f"is the {SECRET_WORD} bar open late tonight?"
        replies = await _rest(client, sent, "rest-5", outage)
        assert len(replies) == 1  # the holding reply
        sent.rasa_errors += 1
        sent.holding_replies += 1
        fake_rasa.mode = "ok"
        await _until(lambda: run_db(services, lambda s: s.scalar(
            select(Message.relay_status).where(Message.text == outage)))
            == RelayStatus.answered)
        sent.bot_turns += 1
    # Web chat: one fan chats, another asks for a person (the bot's own request: queued, as
    # nobody online takes general questions).
    widgets = [Widget(server.url), Widget(server.url)]
    try:
        for w in widgets:
            await w.connect()
        first = await widgets[0].session("evening-web-1")
        for text in ROUTINE:
            await widgets[0].say(text, first)
            sent.texts.append(text)
            await widgets[0].next()
            sent.webchat_replies += 1
            sent.bot_turns += 1
        second = await widgets[1].session("evening-web-2")
        text = f"human please, {SECRET_WORD} here"
        await widgets[1].say(text, second)
        sent.texts.append(text)
        await widgets[1].next()  # the bot's words
        await widgets[1].next()  # who takes over
        sent.webchat_replies += 2
        sent.bot_turns += 1
        sent.handoffs[("bot_request", "general")] = 1
        sent.fan_messages["webchat"] += 3
    finally:
        for w in widgets:
            await w.close()
    await services.relay.drain()
    for sender in set(sent.requests.values()):
        sent.conversations[sender] = _conversation_of(services, sender)
    assert SECRET_WORD in LOST_FRIEND and all(SECRET_WORD in t for t in sent.texts)
    return sent
