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

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    extract,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.exc import SQLAlchemyError
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
TRIGGERS = ("safety", "maybe_urgent", "emotion", "owned_topic", "needs_person", "explicit",
            "several_cases", "repeated", "fallback", "bot_request")
TOP_INTENTS = 10
COMMENTS = 50



def _seconds(dialect: str, start, end):
    """``end - start`` in seconds, on SQLite (text timestamps) and PostgreSQL."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(extract("epoch", end - start), Float)


def offsets(query: ReportQuery) -> list[tuple[dt.datetime, int]]:
    """The venue's UTC offset over the range: [(from this instant, offset in seconds)], a new
    entry at each DST change (found hour by hour: zones change on the hour)."""
    zone = ZoneInfo(query.tz)
    at, out = query.start, []
    while at < query.end:
        offset = int(at.astimezone(zone).utcoffset().total_seconds())
        if not out or out[-1][1] != offset:
            out.append((at, offset))
        at += dt.timedelta(hours=1)
    return out


def local_day(query: ReportQuery, dialect: str):
    """Which day of the range (0 = ``query.first``) a conversation started on, in venue time:
    (UTC seconds + the venue's offset then - the first local midnight) // 86400. Plain
    arithmetic on both backends (SQLite has no time zones); the offset is a constant, or a CASE
    on the instant of a DST change inside the range."""
    shifts = offsets(query)
    base = query.start.timestamp() + shifts[0][1]
    if dialect == "sqlite":
        seconds = (func.julianday(Conversation.created_at) - 2440587.5) * 86400.0
    else:
        seconds = extract("epoch", Conversation.created_at)
    offset = literal(shifts[-1][1])
    if len(shifts) > 1:
        offset = case(*[(Conversation.created_at < literal(shifts[i + 1][0], UTCDateTime),
                         literal(off)) for i, (_at, off) in enumerate(shifts[:-1])],
                      else_=literal(shifts[-1][1]))
    days = (seconds + offset - base) / 86400.0
    # Never negative (the range starts at base): SQLite's CAST truncates, which floors here.
    return cast(days if dialect == "sqlite" else func.floor(days), Integer)


def conversations(query: ReportQuery, dialect: str = "sqlite", *, by_day: bool = False):
    """The conversations of the report, one row each (with its venue-local day: ``by_day``).
    A thread with a fan message has ``last_fan_message_at`` set (api/conversations/service.py
    add_fan_message, the one place fan messages are stored): no lookup in messages needed."""
    day = local_day(query, dialect) if by_day else literal(None)
    stmt = (
        select(Conversation.id, Conversation.topic, Conversation.channel, Conversation.language,
               Conversation.last_assignee_id, Conversation.triage, day.label("day"))
        .where(Conversation.created_at >= query.start, Conversation.created_at < query.end,
               Conversation.last_fan_message_at.is_not(None))
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
    first staff reply and first assignment after it, whether routing queued it at once, the
    timers' reassignments, its CSAT survey. One GROUP BY pass over the handed-off threads'
    messages (no per-row subqueries: PostgreSQL plans it as one join)."""
    convs = conversations(query, dialect, by_day=True)
    handed = (
        select(convs.c.id, convs.c.day, convs.c.topic, convs.c.last_assignee_id,
               convs.c.triage["message_id"].as_integer().label("trigger_id"))
        .where(convs.c.topic.is_not(None))
        .subquery("handed")
    )
    m = aliased(Message, name="m")
    after = m.id > handed.c.trigger_id
    activity = m.kind == MessageKind.activity
    moved_to = m.payload[("transition", "to")].as_string()
    moved_by = m.payload[("transition", "actor")].as_string()
    per_thread = (
        select(
            m.conversation_id.label("conversation_id"),
            # The triggering fan message, read in the same pass (no join on a JSON value).
            func.max(case((m.id == handed.c.trigger_id, m.created_at))).label("started_at"),
            func.max(case((m.id == handed.c.trigger_id, m.intent))).label("intent"),
            func.min(case((and_(after, m.kind == MessageKind.outgoing,
                                m.sender_type == SenderType.staff), m.created_at)))
            .label("first_reply_at"),
            func.min(case((and_(after, activity, moved_to == "assigned"), m.created_at)))
            .label("first_assigned_at"),
            func.max(case((and_(after, activity, moved_to == "queued", moved_by == "triage"),
                           1), else_=0)).label("queued"),
            # Reassignments because the first reply was late: the timers' moves.
            func.sum(case((and_(activity, moved_by == "timer"), 1), else_=0))
            .label("late_moves"),
        )
        .join(handed, m.conversation_id == handed.c.id)
        .group_by(m.conversation_id)
        .subquery("per_thread")
    )
    first_reply_at = per_thread.c.first_reply_at
    first_assigned_at = per_thread.c.first_assigned_at
    started_at = per_thread.c.started_at
    return (
        select(
            handed.c.id, handed.c.day, handed.c.topic, handed.c.last_assignee_id,
            per_thread.c.intent,
            _seconds(dialect, started_at, first_reply_at).label("first_reply_s"),
            _seconds(dialect, started_at, first_assigned_at).label("wait_s"),
            func.coalesce(per_thread.c.queued, 0).label("queued"),
            case((first_reply_at.is_(None), 0), else_=1).label("replied"),
            case((first_assigned_at.is_(None), 0), else_=1).label("assigned"),
            func.coalesce(per_thread.c.late_moves, 0).label("late_moves"),
            case((CsatResponse.id.is_(None), 0), else_=1).label("csat_asked"),
            CsatResponse.staff_id.label("csat_staff_id"), CsatResponse.score.label("csat_score"),
        )
        .select_from(handed)
        .join(per_thread, per_thread.c.conversation_id == handed.c.id, isouter=True)
        .join(CsatResponse, CsatResponse.conversation_id == handed.c.id, isouter=True)
    )


# The handoffs of one report, computed once per request into a temporary table (per database
# connection: concurrent requests never see each other's), then aggregated by every section.
HANDOFFS = Table(
    "report_handoffs", MetaData(),
    Column("id", Integer), Column("day", Integer), Column("topic", String(32)),
    Column("last_assignee_id", Integer), Column("intent", String(100)),
    Column("first_reply_s", Float), Column("wait_s", Float), Column("queued", Integer),
    Column("replied", Integer), Column("assigned", Integer), Column("late_moves", Integer),
    # Only conversations a person resolved are surveyed: CSAT lives with the handoffs.
    Column("csat_asked", Integer), Column("csat_staff_id", Integer), Column("csat_score", Integer),
    prefixes=["TEMPORARY"],
)
DROP_HANDOFFS = text("DROP TABLE IF EXISTS report_handoffs")


@contextmanager
def materialized_handoffs(session: Session, query: ReportQuery) -> Iterator[Table]:
    """The report's handoffs as a temporary table, dropped afterwards."""
    conn = session.connection()
    conn.execute(DROP_HANDOFFS)
    HANDOFFS.create(conn)
    try:
        conn.execute(insert(HANDOFFS).from_select(
            [c.name for c in HANDOFFS.c], handoffs(query, conn.dialect.name)))
        yield HANDOFFS
    except BaseException:
        # On PostgreSQL the failed transaction is rolled back (the table with it).
        with suppress(SQLAlchemyError):
            conn.execute(DROP_HANDOFFS)
        raise
    conn.execute(DROP_HANDOFFS)


def compute(session: Session, *, query: ReportQuery, section: Callable[..., Any],
            **kw) -> Any:
    """One section (or :func:`full`) with the report's handoffs materialized for it."""
    with materialized_handoffs(session, query) as h:
        return section(session, query=query, h=h, **kw)


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
def summary(session: Session, *, query: ReportQuery, h: Table,
            days: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The headline figures of the range (the issue's contract). With ``days`` (from
    :func:`daily`) the counts are their sums: one scan of the range less."""
    dialect = _dialect(session)
    if days is not None:
        total = sum(d["conversations"] for d in days)
        handed = sum(d["handed_off"] for d in days)
    else:
        convs = conversations(query, dialect)
        total, handed = session.execute(
            select(func.count(), func.coalesce(func.sum(case((convs.c.topic.is_not(None), 1),
                                                             else_=0)), 0))
        ).one()
        total, handed = int(total), int(handed)
    p50, p90, _n = percentiles(session, h, "first_reply_s").get(None, (None, None, 0))
    csat = csat_totals(session, query=query, h=h)
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


def daily(session: Session, *, query: ReportQuery, h: Table) -> list[dict[str, Any]]:
    """Per venue-local day: conversations, contained, handed off, first reply p50/p90, CSAT."""
    dialect = _dialect(session)
    convs = conversations(query, dialect, by_day=True)
    counts = {day: (int(n), int(handed)) for day, n, handed in session.execute(
        select(convs.c.day, func.count(),
               func.coalesce(func.sum(case((convs.c.topic.is_not(None), 1), else_=0)), 0))
        .group_by(convs.c.day))}
    replies = percentiles(session, h, "first_reply_s", "day")
    scores = csat_by(session, h=h, by="day")
    out = []
    for index, day in enumerate(query.days):
        n, handed = counts.get(index, (0, 0))
        p50, p90, _ = replies.get(index, (None, None, 0))
        answered, average = scores.get(index, (0, None))
        out.append({"date": day.date.isoformat(), "conversations": n, "contained": n - handed,
                    "containment_rate": _rate(n - handed, n), "handed_off": handed,
                    "first_reply_p50_s": p50, "first_reply_p90_s": p90,
                    "csat_responses": answered, "csat_average": average})
    return out


def by_topic(session: Session, *, query: ReportQuery, h: Table,
             topics: Mapping[str, TopicRule]) -> list[dict[str, Any]]:
    """Per topic: handoffs, first reply p50/p90 next to the topic's target from staff.yml, and
    the share of answered handoffs answered inside it."""
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


def lateness(session: Session, *, query: ReportQuery, h: Table) -> dict[str, int]:
    """Reassignments because the first reply was late (the timers' moves), and the
    conversations they happened to."""
    moved, threads = session.execute(
        select(func.coalesce(func.sum(h.c.late_moves), 0),
               func.coalesce(func.sum(case((h.c.late_moves > 0, 1), else_=0)), 0))
    ).one()
    return {"reassignments": int(moved), "conversations": int(threads)}


def queue(session: Session, *, query: ReportQuery, h: Table) -> dict[str, Any]:
    """Handoffs routing queued at once (nobody suitable online and free), how long they
    waited from the fan's message to their first assignment, and those never assigned."""
    queued_only = select(h).where(h.c.queued == 1).subquery("queued_handoffs")
    n, never = session.execute(
        select(func.count(), func.coalesce(func.sum(1 - queued_only.c.assigned), 0))
    ).one()
    p50, p90, _ = percentiles(session, queued_only, "wait_s").get(None, (None, None, 0))
    unanswered = session.scalar(select(func.count()).where(h.c.replied == 0))
    return {"queued_nobody_free": int(n), "never_assigned": int(never),
            "wait_p50_s": p50, "wait_p90_s": p90, "handoffs_unanswered": int(unanswered)}


def per_staff(session: Session, *, query: ReportQuery, h: Table) -> list[dict[str, Any]]:
    """Per person (the last one the conversation was assigned to): conversations handled,
    median first reply, CSAT."""
    handled = dict(session.execute(
        select(h.c.last_assignee_id, func.count()).where(h.c.last_assignee_id.is_not(None))
        .group_by(h.c.last_assignee_id)).all())
    replies = percentiles(session, h, "first_reply_s", "last_assignee_id")
    scores = csat_by(session, h=h, by="staff")
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


def bot(session: Session, *, query: ReportQuery, h: Table) -> dict[str, Any]:
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
    intents = session.execute(
        select(h.c.intent, func.count().label("n")).group_by(h.c.intent)
        .order_by(func.count().desc(), h.c.intent).limit(TOP_INTENTS)
    )
    return {"turns": int(turns), "fallback": int(fallback),
            "fallback_rate": _rate(int(fallback), int(turns)),
            "intents_before_handoff": [{"intent": i, "handoffs": int(n)} for i, n in intents]}



def csat_totals(session: Session, *, query: ReportQuery, h: Table) -> dict[str, Any]:
    asked, answered, average = session.execute(
        select(func.coalesce(func.sum(h.c.csat_asked), 0), func.count(h.c.csat_score),
               func.avg(h.c.csat_score))
    ).one()
    return {"asked": int(asked), "responses": int(answered), "average": _num(average, 2),
            "response_rate": _rate(int(answered), int(asked))}


def csat_by(session: Session, *, h: Table, by: str) -> dict[Any, tuple[int, Any]]:
    """(answers, average) per venue day (``by="day"``) or per staff id (``by="staff"``)."""
    key = h.c.day if by == "day" else h.c.csat_staff_id
    rows = session.execute(
        select(key, func.count(h.c.csat_score), func.avg(h.c.csat_score))
        .where(h.c.csat_asked == 1).group_by(key)
    )
    return {k: (int(n), _num(avg, 2)) for k, n, avg in rows if k is not None}


def csat(session: Session, *, query: ReportQuery, h: Table) -> dict[str, Any]:
    """CSAT: asked, answered, response rate, average, the 1-5 distribution, latest comments."""
    dist = dict(session.execute(
        select(h.c.csat_score, func.count()).where(h.c.csat_score.is_not(None))
        .group_by(h.c.csat_score)).all())
    comments = session.execute(
        select(CsatResponse.conversation_id, CsatResponse.score, CsatResponse.comment,
               CsatResponse.comment_at, Staff.handle)
        .select_from(h).join(CsatResponse, CsatResponse.conversation_id == h.c.id)
        .join(Staff, Staff.id == CsatResponse.staff_id, isouter=True)
        .where(h.c.csat_asked == 1, CsatResponse.comment.is_not(None))
        .order_by(CsatResponse.comment_at.desc(), CsatResponse.id.desc()).limit(COMMENTS)
    )
    return {**csat_totals(session, query=query, h=h),
            "distribution": {str(s): int(dist.get(s, 0)) for s in range(1, 6)},
            "comments": [{"conversation_id": cid, "score": score, "comment": text,
                          "at": at.isoformat() if at else None, "staff": handle}
                         for cid, score, text, at, handle in comments]}


def full(session: Session, *, query: ReportQuery, h: Table,
         topics: Mapping[str, TopicRule]) -> dict[str, Any]:
    """Every section (the reports page)."""
    days = daily(session, query=query, h=h)
    return {"filters": query.filters(), "summary": summary(session, query=query, h=h, days=days),
            "daily": days,
            "topics": by_topic(session, query=query, h=h, topics=topics),
            "lateness": lateness(session, query=query, h=h),
            "queue": queue(session, query=query, h=h),
            "staff": per_staff(session, query=query, h=h), "bot": bot(session, query=query, h=h),
            "csat": csat(session, query=query, h=h)}
