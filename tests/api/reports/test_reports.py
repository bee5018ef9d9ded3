"""Report figures against a small database seeded by hand, whose right answers are worked out
by hand below (venue time zone Europe/Madrid: CEST, UTC+2, in July)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from api.conversations.models import ChannelIdentity, Conversation, Fan, Message
from api.csat.models import CsatResponse
from api.enums import (
    Channel,
    ConversationStatus,
    DeliveryStatus,
    MessageKind,
    RelayStatus,
    SenderType,
)
from api.staff.models import Staff
from tests.api.conftest import _harness, login

UTC = dt.UTC
RANGE = {"from": "2026-07-10", "to": "2026-07-11"}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class Seeder:
    def __init__(self, session) -> None:
        self.session = session
        self.staff = {s.handle: s.id for s in session.scalars(select(Staff))}
        self.n = 0

    def conversation(self, started: str, channel: Channel, language: str) -> Conversation:
        self.n += 1
        fan = Fan(language=language)
        self.session.add(fan)
        self.session.flush()
        identity = ChannelIdentity(fan_id=fan.id, channel=channel, external_id=f"fan-{self.n}")
        self.session.add(identity)
        self.session.flush()
        conv = Conversation(fan_id=fan.id, identity_id=identity.id, channel=channel,
                            status=ConversationStatus.bot, language=language, reasons=[],
                            created_at=at(started))
        self.session.add(conv)
        self.session.flush()
        return conv

    def message(self, conv: Conversation, when: str, kind: MessageKind, sender: SenderType,
                **kw) -> Message:
        msg = Message(conversation_id=conv.id, channel=conv.channel, kind=kind,
                      sender_type=sender, created_at=at(when), **kw)
        self.session.add(msg)
        self.session.flush()
        return msg

    def fan(self, conv, when, intent=None, confidence=None, status=RelayStatus.answered):
        conv.last_fan_message_at = at(when)  # as add_fan_message does
        return self.message(conv, when, MessageKind.incoming, SenderType.fan, text="hello",
                            intent=intent, intent_confidence=confidence, relay_status=status)

    def staff_reply(self, conv, when, handle):
        return self.message(conv, when, MessageKind.outgoing, SenderType.staff, text="hi",
                            staff_id=self.staff[handle], delivery_status=DeliveryStatus.sent)

    def transition(self, conv, when, to, actor):
        return self.message(conv, when, MessageKind.activity, SenderType.system, text="moved",
                            payload={"transition": {"from": "bot", "to": to, "actor": actor,
                                                    "reason": "test"}})

    def hand_off(self, conv, trigger: Message, topic: str, triggers: list[str], assignee: str):
        conv.topic = topic
        conv.triage = {"topic": topic, "triggers": triggers, "message_id": trigger.id}
        conv.status = ConversationStatus.assigned
        conv.assignee_id = conv.last_assignee_id = self.staff[assignee]

    def csat(self, conv, handle, score=None, comment=None):
        self.session.add(CsatResponse(
            conversation_id=conv.id, staff_id=self.staff[handle], score=score, comment=comment,
            channel=conv.channel, language=conv.language, asked_at=at("2026-07-11T23:00:00"),
            answered_at=at("2026-07-11T23:01:00") if score else None,
            comment_at=at("2026-07-11T23:02:00") if comment else None))


def seed(session) -> None:
    s = Seeder(session)
    # c1: 07-10 12:00 local, REST, contained; the bot understood.
    c1 = s.conversation("2026-07-10T10:00:00", Channel.rest, "en")
    s.fan(c1, "2026-07-10T10:00:00", "opening_hours", 0.9)
    # c2: 07-10 23:30 local, web chat in Spanish, contained; the bot did not understand.
    c2 = s.conversation("2026-07-10T21:30:00", Channel.webchat, "es")
    s.fan(c2, "2026-07-10T21:30:00", "nlu_fallback", 0.3)
    # c3: 07-11 01:00 local (still 07-10 in UTC), Messenger; safety: straight to Noor, who
    # answers 60 s after the fan's message. CSAT 5 with a comment.
    c3 = s.conversation("2026-07-10T23:00:00", Channel.messenger, "en")
    t3 = s.fan(c3, "2026-07-10T23:00:00", status=RelayStatus.skipped)
    s.transition(c3, "2026-07-10T23:00:01", "assigned", "triage")
    s.staff_reply(c3, "2026-07-10T23:01:00", "noor")
    s.hand_off(c3, t3, "safety", ["safety"], "noor")
    s.csat(c3, "noor", 5, "=thanks Noor")
    # c4: 07-11 10:00 local, REST; asked for a person, upset: queued at once (nobody free),
    # Tom takes it after 600 s and answers at 720 s (complaint target 600 s: outside). CSAT 2.
    c4 = s.conversation("2026-07-11T08:00:00", Channel.rest, "en")
    t4 = s.fan(c4, "2026-07-11T08:00:00", "complain", 0.8)
    s.transition(c4, "2026-07-11T08:00:01", "queued", "triage")
    s.transition(c4, "2026-07-11T08:10:00", "assigned", "tom")
    s.staff_reply(c4, "2026-07-11T08:12:00", "tom")
    s.hand_off(c4, t4, "complaint", ["explicit", "emotion"], "tom")
    s.csat(c4, "tom", 2)
    # c5: 07-11 20:00 local, web chat; repeated fallback: to Tom, who is late; the timer gives
    # it to Laura, who answers 2400 s after the fan (general: no staff.yml rule, 30 min).
    c5 = s.conversation("2026-07-11T18:00:00", Channel.webchat, "en")
    s.fan(c5, "2026-07-11T17:59:00", "nlu_fallback", 0.2)
    t5 = s.fan(c5, "2026-07-11T18:00:00", "nlu_fallback", 0.25)
    s.transition(c5, "2026-07-11T18:00:01", "assigned", "triage")
    s.transition(c5, "2026-07-11T18:30:00", "assigned", "timer")
    s.staff_reply(c5, "2026-07-11T18:40:00", "laura")
    s.hand_off(c5, t5, "general", ["fallback"], "laura")
    s.csat(c5, "laura")  # asked, never answered
    # Not conversations of the range: a web chat session that never wrote (07-11), one that
    # started 07-12 00:30 local (07-11 in UTC) and one 07-09 23:59 local.
    silent = s.conversation("2026-07-11T19:00:00", Channel.webchat, "en")
    s.message(silent, "2026-07-11T19:00:00", MessageKind.outgoing, SenderType.bot, text="Hi!")
    late = s.conversation("2026-07-11T22:30:00", Channel.rest, "en")
    s.fan(late, "2026-07-11T22:30:00", "nlu_fallback", 0.1)
    early = s.conversation("2026-07-09T21:59:00", Channel.rest, "en")
    s.fan(early, "2026-07-09T21:59:00", "nlu_fallback", 0.1)
    session.commit()


@pytest.fixture
async def app(make_settings, pattern_triage, clock):
    async for h in _harness(make_settings(), triage=pattern_triage, clock=clock, timers=False):
        with h.services.db.session() as session:
            seed(session)
        yield h


@pytest.fixture
async def laura(app):
    return await login(app.client, "laura")


async def get(app, headers, path, **params):
    r = await app.client.get(f"/api/v1/reports/{path}", params={**RANGE, **params},
                             headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_summary_against_hand_computed_figures(app, laura):
    assert await get(app, laura, "summary") == {
        "conversations": 5, "contained": 2, "containment_rate": 0.4, "handed_off": 3,
        "handoffs_by_trigger": {"safety": 1, "emotion": 1, "explicit": 1, "fallback": 1},
        # first replies 60, 720, 2400 s: nearest rank ceil(3/2)=2nd, ceil(2.7)=3rd
        "first_reply_p50_s": 720.0, "first_reply_p90_s": 2400.0,
        "csat_responses": 2, "csat_average": 3.5,
    }


async def test_days_are_the_venues(app, laura):
    days = await get(app, laura, "daily")
    assert [(d["date"], d["conversations"], d["contained"], d["handed_off"]) for d in days] \
        == [("2026-07-10", 2, 2, 0), ("2026-07-11", 3, 0, 3)]
    assert days[1]["first_reply_p50_s"] == 720.0 and days[1]["csat_average"] == 3.5
    one = await get(app, laura, "summary", **{"from": "2026-07-11", "to": "2026-07-11"})
    assert (one["conversations"], one["handed_off"]) == (3, 3)


async def test_filters(app, laura):
    rest = await get(app, laura, "summary", channel="rest")
    assert (rest["conversations"], rest["contained"], rest["handed_off"]) == (2, 1, 1)
    assert rest["first_reply_p50_s"] == rest["first_reply_p90_s"] == 720.0
    spanish = await get(app, laura, "summary", language="es")
    assert (spanish["conversations"], spanish["containment_rate"]) == (1, 1.0)
    safety = await get(app, laura, "summary", topic="safety")
    assert (safety["conversations"], safety["handoffs_by_trigger"]) == (1, {"safety": 1})
    empty = await get(app, laura, "summary", topic="press")
    assert empty["conversations"] == 0 and empty["containment_rate"] is None


async def test_first_reply_per_topic_against_targets(app, laura):
    topics = {t["topic"]: t for t in await get(app, laura, "first-reply")}
    assert {k: (v["first_reply_p50_s"], v["target_s"], v["inside_target"])
            for k, v in topics.items()} == {"safety": (60.0, 120, 1),
                                            "complaint": (720.0, 600, 0),
                                            "general": (2400.0, 1800, 0)}


async def test_queue_lateness_staff_bot_csat(app, laura):
    queue = await get(app, laura, "queue")
    assert queue == {"queued_nobody_free": 1, "never_assigned": 0, "wait_p50_s": 600.0,
                     "wait_p90_s": 600.0, "handoffs_unanswered": 0,
                     "late_reassignments": {"reassignments": 1, "conversations": 1}}
    people = {p["handle"]: (p["handled"], p["first_reply_p50_s"], p["csat_average"])
              for p in await get(app, laura, "staff")}
    assert people == {"noor": (1, 60.0, 5.0), "tom": (1, 720.0, 2.0), "laura": (1, 2400.0, None)}
    bot = await get(app, laura, "bot")
    # answered fan messages of the five: c1, c2, c4 and c5's two; c2 and c5's two fell back
    assert (bot["turns"], bot["fallback"], bot["fallback_rate"]) == (5, 3, 0.6)
    assert {i["intent"]: i["handoffs"] for i in bot["intents_before_handoff"]} == {
        None: 1, "complain": 1, "nlu_fallback": 1}
    csat = await get(app, laura, "csat")
    assert (csat["asked"], csat["responses"], csat["response_rate"], csat["average"]) \
        == (3, 2, 0.6667, 3.5)
    assert csat["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert [c["comment"] for c in csat["comments"]] == ["=thanks Noor"]


async def test_csv_downloads(app, laura):
    r = await app.client.get("/api/v1/reports/summary", params={**RANGE, "format": "csv"},
                             headers=laura)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="summary-2026-07-10-2026-07-11.csv"' in r.headers["content-disposition"]
    rows = dict(csv.reader(io.StringIO(r.text)))
    assert rows["conversations"] == "5" and rows["handoffs_by_trigger.safety"] == "1"
    assert rows["first_reply_p90_s"] == "2400.0"
    r = await app.client.get("/api/v1/reports/daily", params={**RANGE, "format": "csv"},
                             headers=laura)
    days = list(csv.DictReader(io.StringIO(r.text)))
    assert [(d["date"], d["handed_off"]) for d in days] == [("2026-07-10", "0"),
                                                           ("2026-07-11", "3")]
    r = await app.client.get("/api/v1/reports/csat", params={**RANGE, "format": "csv"},
                             headers=laura)
    # a comment starting with "=" is not a spreadsheet formula
    assert list(csv.DictReader(io.StringIO(r.text)))[0]["comment"] == "'=thanks Noor"


@pytest.mark.parametrize("params", [
    {"from": "2026-07-11", "to": "2026-07-10"},  # reversed
    {"from": "2026-07-10"},  # no end
    {"from": "2026-07-10", "to": "2026-13-01"},  # not a date
    {"from": "2025-01-01", "to": "2026-07-10"},  # longer than a year
    {"from": "2026-07-10", "to": "2026-07-11", "channel": "fax"},
])
async def test_bad_range_422(app, laura, params):
    r = await app.client.get("/api/v1/reports/summary", params=params, headers=laura)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)


async def test_only_supervisors_and_operators(app):
    for handle, status in (("tom", 403), ("karim", 403), ("sam", 200), ("noor", 200)):
        headers = await login(app.client, handle)
        for path in ("summary", "csat"):
            r = await app.client.get(f"/api/v1/reports/{path}", params=RANGE, headers=headers)
            assert r.status_code == status, (handle, path)
    r = await app.client.get("/api/v1/reports/summary", params=RANGE)
    assert r.status_code == 401


async def _page_login(app, handle):
    r = await app.client.get("/inbox/login")
    csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
    r = await app.client.post("/inbox/login", data={"handle": handle, "password": "aurora-demo",
                                                    "csrf": csrf, "next": "/inbox/reports"})
    assert r.status_code == 303 and r.headers["location"] == "/inbox/reports"


async def test_page_renders_for_a_supervisor(app):
    await _page_login(app, "laura")
    r = await app.client.get("/inbox/reports", params=RANGE)
    assert r.status_code == 200, r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert 'id="fig-conversations">5<' in html and 'id="fig-containment">40 %<' in html
    assert html.count("<svg") >= 4 and "<script" not in html
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    for chart in charts:  # well-formed SVG, every bar with its figure
        root = ElementTree.fromstring(chart)
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    assert any("2026-07-11: 3 conversations, 0 contained, 3 handed off" in c for c in charts)
    assert "Handoffs by trigger" in html and "=thanks Noor" in html
    assert "/api/v1/reports/summary?format=csv&amp;from=2026-07-10&amp;to=2026-07-11" in html
    inbox = await app.client.get("/inbox")
    assert 'href="/inbox/reports"' in inbox.text
    r = await app.client.get("/inbox/reports", params={"from": "2026-07-11", "to": "2026-07-01"})
    assert r.status_code == 422 and "before" in r.text
    assert (await app.client.get("/inbox/reports/static/reports.css")).status_code == 200


async def test_page_refuses_other_staff(app):
    await _page_login(app, "tom")
    r = await app.client.get("/inbox/reports", params=RANGE)
    assert r.status_code == 403 and "Supervisors and operators only" in r.text
    assert 'href="/inbox/reports"' not in (await app.client.get("/inbox")).text


async def test_days_across_a_dst_change(app, laura):
    """Clocks go back on 2026-10-25 (CEST +2 -> CET +1 at 01:00 UTC)."""
    with app.services.db.session() as session:
        s = Seeder(session)
        s.n = 100  # after the seeded fans
        for started in ("2026-10-24T22:30:00",  # 00:30 CEST on the 25th
                        "2026-10-25T22:59:00",  # 23:59 CET on the 25th
                        "2026-10-25T23:00:00"):  # 00:00 CET on the 26th
            s.fan(s.conversation(started, Channel.rest, "en"), started, "greet", 0.9)
        session.commit()
    days = await get(app, laura, "daily", **{"from": "2026-10-24", "to": "2026-10-26"})
    assert [(d["date"], d["conversations"]) for d in days] == [
        ("2026-10-24", 0), ("2026-10-25", 2), ("2026-10-26", 1)]
