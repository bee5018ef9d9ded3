"""The care lead's figures, computed by the database (GROUP BY, window functions), never by
loading conversations into Python. No writes here.

Definitions (docs/reports.md):

- a conversation is a thread with at least one fan message, counted on the venue-local day it
  started (``conversations.created_at``);
- handed off: triage stored a handoff decision on it (``conversations.topic`` is set only
  then); contained: the others;
- a handoff starts at the fan message that triggered it (``conversations.triage.message_id``):
  the fan has been waiting for a person since then (the inbox's "waiting" clock);
- first reply: the first staff message after that message, minus its time;
- percentiles are nearest-rank (p50 = the ceil(n/2)-th shortest, p90 = the ceil(0.9 n)-th),
  picked with ROW_NUMBER() over the sorted durations on both SQLite and PostgreSQL.

A conversation handed off twice keeps only its latest decision (the conversation row keeps one):
its triggers, topic and first reply are those of the latest handoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from api.conversations.models import Conversation, Message
from api.csat.models import CsatResponse
from api.db import UTCDateTime
from api.enums import MessageKind, RelayStatus, SenderType
from api.reports.schemas import ReportQuery
from api.routing.policy import TopicRule, first_response_minutes
from api.staff.models import Staff

# The bot did not understand a turn: api/triage/engine.py FALLBACK_INTENTS and
# Policy.low_confidence (= config.yml's FallbackClassifier threshold). Not imported: the engine
# module loads spaCy.
FALLBACK_INTENTS = ("nlu_fallback", "out_of_scope")
LOW_CONFIDENCE = 0.55
# Handoff triggers in the order the page lists them (api/triage/schemas.py Trigger).
TRIGGERS = ("safety", "emotion", "owned_topic", "needs_person", "explicit", "several_cases",
            "repeated", "fallback", "bot_request")
TOP_INTENTS = 10
COMMENTS = 50

Trigger = aliased(Message, name="trigger_message")


def _fan_message_exists():
    return exists().where(Message.conversation_id == Conversation.id,
                          Message.kind == MessageKind.incoming,
                          Message.sender_type == SenderType.fan)


def _seconds(dialect: str, start, end):
    """``end - start`` in seconds, on SQLite (text timestamps) and PostgreSQL."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(extract("epoch", end - start), Float)


def _days(query: ReportQuery):
    """The range's days as rows (day, day_start, day_end): a UNION ALL of literals, so each
    conversation falls in its venue-local day on both backends (SQLite has no time zones)."""
    rows = [select(literal(d.date.isoformat()).label("day"),
                   literal(d.start, UTCDateTime).label("day_start"),
                   literal(d.end, UTCDateTime).label("day_end")) for d in query.days]
    return (rows[0] if len(rows) == 1 else union_all(*rows)).subquery("days")


def conversations(query: ReportQuery):
    """The conversations of the report, one row each with its venue-local day."""
    days = _days(query)
    stmt = (
        select(Conversation.id, Conversation.topic, Conversation.channel, Conversation.language,
               Conversation.last_assignee_id, Conversation.triage, days.c.day)
        .join(days, and_(Conversation.created_at >= days.c.day_start,
                         Conversation.created_at < days.c.day_end))
        .where(Conversation.created_at >= query.start, Conversation.created_at < query.end,
               _fan_message_exists())
    )
    if query.channel is not None:
        stmt = stmt.where(Conversation.channel == query.channel)
    if query.topic is not None:
        stmt = stmt.where(Conversation.topic == query.topic)
    if query.language is not None:
        stmt = stmt.where(Conversation.language == query.language)
    return stmt.subquery("convs")


def handoffs(query: ReportQuery, dialect: str):
    """One row per handed-off conversation: its handoff start (the triggering fan message),
    first staff reply, first assignment after it, whether routing queued it at once."""
    convs = conversations(query)
    reply = aliased(Message, name="reply")
    first_reply_at = (
        select(func.min(reply.created_at))
        .where(reply.conversation_id == convs.c.id, reply.id > Trigger.id,
               reply.kind == MessageKind.outgoing, reply.sender_type == SenderType.staff)
        .scalar_subquery()
    )
    act = aliased(Message, name="act")
    transition_to = act.payload[("transition", "to")].as_string()
    transition_by = act.payload[("transition", "actor")].as_string()
    first_assigned_at = (
        select(func.min(act.created_at))
        .where(act.conversation_id == convs.c.id, act.id > Trigger.id,
               act.kind == MessageKind.activity, transition_to == "assigned")
        .scalar_subquery()
    )
    queued = exists().where(act.conversation_id == convs.c.id, act.id > Trigger.id,
                            act.kind == MessageKind.activity, transition_to == "queued",
                            transition_by == "triage")
    inner = (
        select(convs.c.id, convs.c.day, convs.c.topic, convs.c.last_assignee_id,
               Trigger.created_at.label("started_at"), Trigger.intent.label("intent"),
               first_reply_at.label("first_reply_at"),
               first_assigned_at.label("first_assigned_at"),
               case((queued, 1), else_=0).label("queued"))
        .select_from(convs)
        .join(Trigger, Trigger.id == convs.c.triage["message_id"].as_integer(), isouter=True)
        .where(convs.c.topic.is_not(None))
        .subquery("inner_handoffs")
    )
    return select(
        inner,
        _seconds(dialect, inner.c.started_at, inner.c.first_reply_at).label("first_reply_s"),
        _seconds(dialect, inner.c.started_at, inner.c.first_assigned_at).label("wait_s"),
    ).subquery("handoffs")


def percentiles(session: Session, source, value: str, group: str | None = None,
                ) -> dict[Any, tuple[float | None, float | None, int]]:
    """Nearest-rank p50 and p90 (and n) of ``source.c[value]`` per ``source.c[group]`` (or
    overall under the key None), with ROW_NUMBER over the sorted values: portable SQL."""
    col = source.c[value]
    key = source.c[group] if group else literal(0)
    ranked = select(
        key.label("grp"), col.label("v"),
        func.row_number().over(partition_by=key, order_by=col).label("rn"),
        func.count().over(partition_by=key).label("n"),
    ).where(col.is_not(None)).subquery("ranked")
    rows = session.execute(
        select(ranked.c.grp,
               func.max(case((ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.v))),
               func.max(case((ranked.c.rn == (9 * ranked.c.n + 9) // 10, ranked.c.v))),
               func.max(ranked.c.n))
        .group_by(ranked.c.grp)
    )
    return {(grp if group else None): (_num(p50), _num(p90), int(n)) for grp, p50, p90, n in rows}


def _num(value, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 4)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# -- sections ---------------------------------------------------------------------------------
def summary(session: Session, *, query: ReportQuery) -> dict[str, Any]:
    """The headline figures of the range (the issue's contract, plus a few more)."""
    dialect = _dialect(session)
    convs = conversations(query)
    total, handed = session.execute(
        select(func.count(), func.coalesce(func.sum(case((convs.c.topic.is_not(None), 1),
                                                         else_=0)), 0))
    ).one()
    total, handed = int(total), int(handed)
    h = handoffs(query, dialect)
    p50, p90, _n = percentiles(session, h, "first_reply_s").get(None, (None, None, 0))
    csat = csat_totals(session, query=query)
    return {
        "conversations": total,
        "contained": total - handed,
        "containment_rate": _rate(total - handed, total),
        "handed_off": handed,
        "handoffs_by_trigger": by_trigger(session, query=query, dialect=dialect),
        "first_reply_p50_s": p50,
        "first_reply_p90_s": p90,
        "csat_responses": csat["responses"],
        "csat_average": csat["average"],
    }


def by_trigger(session: Session, *, query: ReportQuery, dialect: str) -> dict[str, int]:
    """Handed-off conversations per trigger (a handoff with two triggers counts under both)."""
    convs = conversations(query)
    if dialect == "sqlite":
        each = func.json_each(convs.c.triage, "$.triggers").table_valued("value")
    else:
        each = func.jsonb_array_elements_text(convs.c.triage["triggers"]).table_valued("value")
    rows = session.execute(
        select(each.c.value, func.count()).select_from(convs).join(each, true())
        .where(convs.c.topic.is_not(None)).group_by(each.c.value)
    )
    found = {str(t): int(n) for t, n in rows}
    ordered = {t: found.pop(t) for t in TRIGGERS if t in found}
    return {**ordered, **dict(sorted(found.items()))}


def daily(session: Session, *, query: ReportQuery) -> list[dict[str, Any]]:
    """Per venue-local day: conversations, contained, handed off, first reply p50/p90, CSAT."""
    dialect = _dialect(session)
    convs = conversations(query)
    counts = {day: (int(n), int(handed)) for day, n, handed in session.execute(
        select(convs.c.day, func.count(),
               func.coalesce(func.sum(case((convs.c.topic.is_not(None), 1), else_=0)), 0))
        .group_by(convs.c.day))}
    replies = percentiles(session, handoffs(query, dialect), "first_reply_s", "day")
    scores = csat_by(session, query=query, by="day")
    out = []
    for day in query.days:
        key = day.date.isoformat()
        n, handed = counts.get(key, (0, 0))
        p50, p90, _ = replies.get(key, (None, None, 0))
        answered, average = scores.get(key, (0, None))
        out.append({"date": key, "conversations": n, "contained": n - handed,
                    "containment_rate": _rate(n - handed, n), "handed_off": handed,
                    "first_reply_p50_s": p50, "first_reply_p90_s": p90,
                    "csat_responses": answered, "csat_average": average})
    return out


def by_topic(session: Session, *, query: ReportQuery,
             topics: Mapping[str, TopicRule]) -> list[dict[str, Any]]:
    """Per topic: handoffs, first reply p50/p90 next to the topic's target from staff.yml, and
    the share of answered handoffs answered inside it."""
    dialect = _dialect(session)
    h = handoffs(query, dialect)
    names = sorted(set(topics) | {"general"})
    target_s = case({t: first_response_minutes(t, topics) * 60 for t in names},
                    value=h.c.topic, else_=first_response_minutes("general", topics) * 60)
    rows = session.execute(
        select(h.c.topic, func.count(), func.count(h.c.first_reply_s),
               func.coalesce(func.sum(case((h.c.first_reply_s <= target_s, 1), else_=0)), 0))
        .group_by(h.c.topic)
    )
    replies = percentiles(session, h, "first_reply_s", "topic")
    out = []
    for topic, handed, answered, inside in rows:
        p50, p90, _ = replies.get(topic, (None, None, 0))
        out.append({"topic": topic, "handed_off": int(handed), "answered": int(answered),
                    "target_s": first_response_minutes(topic, topics) * 60,
                    "first_reply_p50_s": p50, "first_reply_p90_s": p90,
                    "inside_target": int(inside),
                    "inside_target_rate": _rate(int(inside), int(answered))})
    return sorted(out, key=lambda r: (-r["handed_off"], r["topic"]))


def lateness(session: Session, *, query: ReportQuery) -> dict[str, int]:
    """Reassignments because the first reply was late (the timers' moves), and the
    conversations they happened to."""
    convs = conversations(query)
    actor = Message.payload[("transition", "actor")].as_string()
    moved, threads = session.execute(
        select(func.count(), func.count(func.distinct(Message.conversation_id)))
        .select_from(convs).join(Message, Message.conversation_id == convs.c.id)
        .where(Message.kind == MessageKind.activity, actor == "timer")
    ).one()
    return {"reassignments": int(moved), "conversations": int(threads)}


def queue(session: Session, *, query: ReportQuery) -> dict[str, Any]:
    """Handoffs routing queued at once (nobody suitable online and free), how long they
    waited from the fan's message to their first assignment, and those never assigned."""
    h = handoffs(query, _dialect(session))
    queued_only = select(h).where(h.c.queued == 1).subquery("queued_handoffs")
    n, never = session.execute(
        select(func.count(), func.coalesce(func.sum(
            case((queued_only.c.first_assigned_at.is_(None), 1), else_=0)), 0))
    ).one()
    p50, p90, _ = percentiles(session, queued_only, "wait_s").get(None, (None, None, 0))
    unanswered = session.scalar(select(func.count()).where(h.c.first_reply_at.is_(None)))
    return {"queued_nobody_free": int(n), "never_assigned": int(never),
            "wait_p50_s": p50, "wait_p90_s": p90, "handoffs_unanswered": int(unanswered)}


def per_staff(session: Session, *, query: ReportQuery) -> list[dict[str, Any]]:
    """Per person (the last one the conversation was assigned to): conversations handled,
    median first reply, CSAT."""
    h = handoffs(query, _dialect(session))
    handled = dict(session.execute(
        select(h.c.last_assignee_id, func.count()).where(h.c.last_assignee_id.is_not(None))
        .group_by(h.c.last_assignee_id)).all())
    replies = percentiles(session, h, "first_reply_s", "last_assignee_id")
    scores = csat_by(session, query=query, by="staff")
    ids = set(handled) | set(scores)
    people = {s.id: s for s in session.scalars(select(Staff).where(Staff.id.in_(ids)))} \
        if ids else {}
    out = []
    for staff_id in ids:
        person = people.get(staff_id)
        answered, average = scores.get(staff_id, (0, None))
        out.append({"handle": person.handle if person else None,
                    "name": person.name if person else None,
                    "handled": int(handled.get(staff_id, 0)),
                    "first_reply_p50_s": replies.get(staff_id, (None, None, 0))[0],
                    "csat_responses": answered, "csat_average": average})
    return sorted(out, key=lambda r: (-r["handled"], r["handle"] or ""))


def bot(session: Session, *, query: ReportQuery) -> dict[str, Any]:
    """The bot: fan messages it answered, the share it did not understand (fallback intent or
    confidence under the fallback threshold), and the intents that most often came just
    before a handoff (of the triggering message; none when it skipped the bot)."""
    convs = conversations(query)
    struggled = or_(Message.intent.in_(FALLBACK_INTENTS),
                    Message.intent_confidence < LOW_CONFIDENCE)
    turns, fallback = session.execute(
        select(func.count(), func.coalesce(func.sum(case((struggled, 1), else_=0)), 0))
        .select_from(convs).join(Message, Message.conversation_id == convs.c.id)
        .where(Message.kind == MessageKind.incoming, Message.sender_type == SenderType.fan,
               Message.relay_status == RelayStatus.answered)
    ).one()
    h = handoffs(query, _dialect(session))
    intents = session.execute(
        select(h.c.intent, func.count().label("n")).group_by(h.c.intent)
        .order_by(func.count().desc(), h.c.intent).limit(TOP_INTENTS)
    )
    return {"turns": int(turns), "fallback": int(fallback),
            "fallback_rate": _rate(int(fallback), int(turns)),
            "intents_before_handoff": [{"intent": i, "handoffs": int(n)} for i, n in intents]}



def csat_totals(session: Session, *, query: ReportQuery) -> dict[str, Any]:
    convs = conversations(query)
    asked, answered, average = session.execute(
        select(func.count(), func.count(CsatResponse.score), func.avg(CsatResponse.score))
        .select_from(convs).join(CsatResponse, CsatResponse.conversation_id == convs.c.id)
    ).one()
    return {"asked": int(asked), "responses": int(answered), "average": _num(average, 2),
            "response_rate": _rate(int(answered), int(asked))}


def csat_by(session: Session, *, query: ReportQuery, by: str) -> dict[Any, tuple[int, Any]]:
    """(answers, average) per venue day (``by="day"``) or per staff id (``by="staff"``)."""
    convs = conversations(query)
    key = convs.c.day if by == "day" else CsatResponse.staff_id
    rows = session.execute(
        select(key, func.count(CsatResponse.score), func.avg(CsatResponse.score))
        .select_from(convs).join(CsatResponse, CsatResponse.conversation_id == convs.c.id)
        .group_by(key)
    )
    return {k: (int(n), _num(avg, 2)) for k, n, avg in rows if k is not None}


def csat(session: Session, *, query: ReportQuery) -> dict[str, Any]:
    """CSAT: asked, answered, response rate, average, the 1-5 distribution, latest comments."""
    convs = conversations(query)
    dist = dict(session.execute(
        select(CsatResponse.score, func.count()).select_from(convs)
        .join(CsatResponse, CsatResponse.conversation_id == convs.c.id)
        .where(CsatResponse.score.is_not(None)).group_by(CsatResponse.score)).all())
    comments = session.execute(
        select(CsatResponse.conversation_id, CsatResponse.score, CsatResponse.comment,
               CsatResponse.comment_at, Staff.handle)
        .select_from(convs).join(CsatResponse, CsatResponse.conversation_id == convs.c.id)
        .join(Staff, Staff.id == CsatResponse.staff_id, isouter=True)
        .where(CsatResponse.comment.is_not(None))
        .order_by(CsatResponse.comment_at.desc(), CsatResponse.id.desc()).limit(COMMENTS)
    )
    return {**csat_totals(session, query=query),
            "distribution": {str(s): int(dist.get(s, 0)) for s in range(1, 6)},
            "comments": [{"conversation_id": cid, "score": score, "comment": text,
                          "at": at.isoformat() if at else None, "staff": handle}
                         for cid, score, text, at, handle in comments]}


def full(session: Session, *, query: ReportQuery,
         topics: Mapping[str, TopicRule]) -> dict[str, Any]:
    """Every section (the reports page)."""
    return {"filters": query.filters(), "summary": summary(session, query=query),
            "daily": daily(session, query=query),
            "topics": by_topic(session, query=query, topics=topics),
            "lateness": lateness(session, query=query), "queue": queue(session, query=query),
            "staff": per_staff(session, query=query), "bot": bot(session, query=query),
            "csat": csat(session, query=query)}
