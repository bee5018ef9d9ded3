"""Reports on a big desk: 100,000 conversations bulk-inserted, then the summary and the reports
page timed for a 30-day range, on SQLite and on PostgreSQL.

    .venv/bin/python -m benchmarks.reports [--conversations 100000] [--days 60] [--runs 5]
        [--backends sqlite,postgresql] [--pg-admin-url URL] [--json var/bench-reports.json]

Each backend gets a fresh database (a temporary SQLite file; a temporary PostgreSQL database on
127.0.0.1:5432, dropped at the end), migrated to head, with the team of data/staff.yml. The
conversations start evenly over ``--days`` days ending yesterday (venue time); a quarter are
handed off (a triage activity, a staff reply 30 s - 1 h later; a fifth of those queued first,
one in twenty reassigned by the timer) and two thirds of handoffs are surveyed (CSAT). Every
conversation has a fan message and a bot reply (one in eight a fallback). The summary and the
page are requested through the app in-process (httpx ASGI transport, the inbox's cookie
session), ``--runs`` times after one warm-up, for the last 30 days. Stops by itself; writes
``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.conversations.models import ChannelIdentity, Conversation, Fan, Message  # noqa: E402
from api.csat.models import CsatResponse  # noqa: E402
from api.main import create_app, migrate  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.staff import service as staff_service  # noqa: E402
from api.staff.models import Staff  # noqa: E402

TZ = "Europe/Madrid"
CHANNELS = ("webchat", "messenger", "rest")
LANGUAGES = ("en", "es", "de")
TOPICS = ("general", "complaint", "safety", "refund", "vip", "lost_property")
TRIGGERS = ("explicit", "emotion", "safety", "owned_topic", "fallback", "needs_person")
INTENTS = ("opening_hours", "ticket_prices", "lineup", "address", "dress_code")
BATCH = 5000


def seed(url: str, *, conversations: int, days: int, end: dt.datetime) -> float:
    """Bulk-insert the desk; returns the seconds it took."""
    rng = random.Random(15)
    engine = create_engine(url)
    with engine.begin() as conn:
        staff_ids = [row[0] for row in conn.execute(text("SELECT id FROM staff"))]
    started = time.perf_counter()
    span = days * 86400
    fans, identities, convs, messages, csat = [], [], [], [], []
    mid = 0

    def flush(force: bool = False) -> None:
        if not force and len(messages) < BATCH * 4:
            return
        with engine.begin() as conn:
            for table, rows in ((Fan, fans), (ChannelIdentity, identities),
                                (Conversation, convs), (Message, messages),
                                (CsatResponse, csat)):
                if rows:
                    conn.execute(insert(table.__table__), rows)
                    rows.clear()

    for i in range(1, conversations + 1):
        at = end - dt.timedelta(seconds=span * (conversations - i) / conversations)
        channel = rng.choice(CHANNELS)
        language = rng.choice(LANGUAGES)
        fans.append({"id": i, "language": language, "created_at": at})
        identities.append({"id": i, "fan_id": i, "channel": channel,
                           "external_id": f"bench-{i}", "created_at": at})
        conv = {"id": i, "fan_id": i, "identity_id": i, "channel": channel, "status": "bot",
                "language": language, "reasons": [], "version": 1, "created_at": at,
                "updated_at": at, "last_fan_message_at": at, "topic": None, "triage": None,
                "priority": None, "assignee_id": None, "last_assignee_id": None,
                "assigned_at": None, "first_response_at": None, "resolved_at": None}
        fallback = rng.random() < 0.125

        def message(when, kind, sender, conversation_id=i, channel=channel, **kw):
            nonlocal mid
            mid += 1
            messages.append({"id": mid, "uid": uuid.uuid4().hex,
                             "conversation_id": conversation_id, "channel": channel,
                             "kind": kind, "sender_type": sender,
                             "created_at": when, "relay_attempts": 0, "text": "…",
                             "payload": kw.pop("payload", None), "staff_id": None,
                             "intent": None, "intent_confidence": None,
                             "relay_status": None, "delivery_status": None, **kw})
            return mid

        trigger = message(at, "incoming", "fan", relay_status="answered",
                          intent="nlu_fallback" if fallback else rng.choice(INTENTS),
                          intent_confidence=0.3 if fallback else 0.9)
        message(at + dt.timedelta(seconds=1), "outgoing", "bot", delivery_status="sent")
        if rng.random() < 0.25:
            topic, staff_id = rng.choice(TOPICS), rng.choice(staff_ids)
            queued = rng.random() < 0.2
            conv.update(topic=topic, status="resolved", priority="normal",
                        triage={"topic": topic, "triggers": rng.sample(TRIGGERS, rng.choice(
                            (1, 1, 2))), "message_id": trigger},
                        assignee_id=None, last_assignee_id=staff_id)
            t = at + dt.timedelta(seconds=2)
            message(t, "activity", "system", payload={"triage": conv["triage"]})
            if queued:
                message(t, "activity", "system", payload={"transition": {
                    "from": "bot", "to": "queued", "actor": "triage"}})
                t += dt.timedelta(seconds=rng.randint(60, 3600))
            message(t, "activity", "system", payload={"transition": {
                "from": "queued" if queued else "bot", "to": "assigned",
                "actor": "routing" if queued else "triage"}})
            if rng.random() < 0.05:
                t += dt.timedelta(minutes=10)
                message(t, "activity", "system", payload={"transition": {
                    "from": "assigned", "to": "assigned", "actor": "timer"}})
            reply = t + dt.timedelta(seconds=rng.randint(30, 3600))
            message(reply, "outgoing", "staff", staff_id=staff_id, delivery_status="sent")
            conv.update(assigned_at=t, first_response_at=reply,
                        resolved_at=reply + dt.timedelta(minutes=5))
            if rng.random() < 0.67:
                score = rng.choice((1, 2, 3, 4, 4, 5, 5, 5)) if rng.random() < 0.6 else None
                csat.append({"conversation_id": i, "staff_id": staff_id, "score": score,
                             "comment": "great, thanks" if score and score >= 4 else None,
                             "language": language, "channel": channel,
                             "asked_at": reply + dt.timedelta(minutes=5),
                             "answered_at": reply + dt.timedelta(minutes=6) if score else None,
                             "comment_at": None})
        convs.append(conv)
        flush()
    flush(force=True)
    engine.dispose()
    return time.perf_counter() - started


async def time_requests(settings: Settings, *, first: dt.date, last: dt.date,
                        runs: int) -> dict[str, dict[str, float]]:
    from api.triage.engine import Triage

    triage = Triage.load(None, require_model=False)  # no model: nothing here triages
    app = create_app(settings, triage=triage, timers=False)
    params = {"from": first.isoformat(), "to": last.isoformat()}
    out: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/inbox/login")
            csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
            r = await client.post("/inbox/login", data={
                "handle": "laura", "password": settings.demo_staff_password, "csrf": csrf})
            assert r.status_code == 303, r.text
            for name, path in (("summary", "/api/v1/reports/summary"),
                               ("page", "/inbox/reports")):
                times, cpu = [], []
                for n in range(runs + 1):
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = await client.get(path, params=params)
                    elapsed = time.perf_counter() - t0
                    assert r.status_code == 200, r.text[:500]
                    if n:  # the first is a warm-up
                        times.append(elapsed)
                        # CPU of this process (SQLite's work included, PostgreSQL's not): what
                        # a request costs whatever else the machine is doing.
                        cpu.append(time.process_time() - c0)
                    if name == "summary":
                        figures = r.json()
                out[name] = {"median_s": round(statistics.median(times), 3),
                             "max_s": round(max(times), 3),
                             "cpu_median_s": round(statistics.median(cpu), 3), "runs": runs}
            out["summary_figures"] = {k: figures[k] for k in (
                "conversations", "handed_off", "first_reply_p50_s", "csat_average")}
    return out


def run_backend(backend: str, args) -> dict:
    tmp = None
    pg_name = None
    if backend == "sqlite":
        tmp = tempfile.TemporaryDirectory(prefix="bench-reports-")
        url = f"sqlite:///{Path(tmp.name) / 'reports.db'}"
    else:
        admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
        pg_name = f"bench_reports_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + pg_name
    try:
        migrate(url)
        settings = Settings(_env_file=None, APP_ENV="local", DATABASE_URL=url,
                            DB_AUTO_MIGRATE=False, STAFF_TIMEZONE=TZ,
                            STAFF_FILE=str(ROOT / "data" / "staff.yml"))
        engine = create_engine(url)
        from sqlalchemy.orm import Session

        with Session(engine) as session:
            staff_service.seed(session=session,
                               team=staff_service.load_team(path=settings.staff_file))
            session.commit()
            assert session.query(Staff).count() > 0
        if backend == "postgresql":
            with engine.begin() as conn:  # explicit ids: move the sequences past them
                for table in ("fans", "channel_identities", "conversations", "messages"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                      f" {args.conversations * 10})"))
        engine.dispose()
        today = dt.datetime.now(ZoneInfo(TZ)).date()
        end = dt.datetime.combine(today, dt.time(0), tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC)
        seconds = seed(url, conversations=args.conversations, days=args.days, end=end)
        if backend == "postgresql":
            with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text("ANALYZE"))
        else:
            with create_engine(url).connect() as conn:
                conn.execute(text("ANALYZE"))
        last = today - dt.timedelta(days=1)
        first = last - dt.timedelta(days=29)
        timings = asyncio.run(time_requests(settings, first=first, last=last, runs=args.runs))
        result = {"backend": backend, "conversations": args.conversations, "days": args.days,
                  "range": [first.isoformat(), last.isoformat()], "seed_s": round(seconds, 1),
                  **timings}
        print(json.dumps(result), flush=True)
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()
        if pg_name is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-admin-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-reports.json")
    args = parser.parse_args()
    results = [run_backend(b.strip(), args) for b in args.backends.split(",") if b.strip()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    for r in results:
        print(f"{r['backend']}: {r['conversations']} conversations over {r['days']} days, "
              f"range {r['range'][0]}..{r['range'][1]}: summary median {r['summary']['median_s']}"
              f" s (max {r['summary']['max_s']}, CPU {r['summary']['cpu_median_s']} s), page "
              f"median {r['page']['median_s']} s (max {r['page']['max_s']}, CPU "
              f"{r['page']['cpu_median_s']} s); seeding {r['seed_s']} s")


if __name__ == "__main__":
    main()
