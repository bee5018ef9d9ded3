"""The inbox lists with many open threads: ``python -m benchmarks.inbox_waiting URL OPEN RESOLVED``
(switchboard environment). DROPS AND RECREATES every table at URL: give it a scratch database
(``sqlite:////tmp/w.db``, or an empty PostgreSQL database).

Seeds OPEN threads with people (queued and assigned, every priority) and RESOLVED closed ones,
five messages each (fan, bot, fan, the handoff move, fan), then times ``lists()`` for a
supervisor (every open thread in three lists, each row with waiting_since, overdue_by_s and the
last text) and the waiting_since query alone (api/conversations/waiting.py), median of 5.
"""

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from api.conversations import waiting
from api.conversations.models import ChannelIdentity, Conversation, Fan, Message
from api.db import Base, make_engine
from api.inbox import service
from api.routing.service import load_topics
from api.staff.models import Staff

url, n_open, n_closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if url.startswith("sqlite:///"):  # a fresh file (dropping 100,000 rows' tables is slow)
    for suffix in ("", "-wal", "-shm"):
        Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
engine = make_engine(url)
Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)
t0 = dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC)
with engine.begin() as c:
    c.execute(insert(Staff), [{"handle": "laura", "name": "Laura", "role": "supervisor",
                               "title": "", "skills": [], "languages": [], "shifts": []}])
    total = n_open + n_closed
    c.execute(insert(Fan), [{"id": i + 1, "created_at": t0} for i in range(total)])
    c.execute(insert(ChannelIdentity), [{"id": i + 1, "fan_id": i + 1, "channel": "rest",
                                         "external_id": f"f{i}", "created_at": t0}
                                        for i in range(total)])
    convs, msgs = [], []
    mid = 0
    for i in range(total):
        is_open = i < n_open
        status = ("queued" if i % 2 else "assigned") if is_open else "resolved"
        at = t0 + dt.timedelta(seconds=i)
        convs.append({"id": i + 1, "fan_id": i + 1, "identity_id": i + 1, "channel": "rest",
                      "status": status, "priority": ["urgent", "high", "normal"][i % 3],
                      "topic": "general", "reasons": [], "version": 1, "created_at": at,
                      "updated_at": at, "assignee_id": 1 if status == "assigned" else None})
        for k, (kind, sender, payload) in enumerate([
                ("incoming", "fan", None), ("outgoing", "bot", None), ("incoming", "fan", None),
                ("activity", "system", {"transition": {"from": "bot", "to": "queued"}}),
                ("incoming", "fan", None)]):
            mid += 1
            msgs.append({"id": mid, "uid": f"u{mid}", "conversation_id": i + 1, "channel": "rest",
                         "kind": kind, "sender_type": sender, "text": "x", "payload": payload,
                         "relay_attempts": 0, "created_at": at + dt.timedelta(seconds=k)})
    c.execute(insert(Conversation), convs)
    for j in range(0, len(msgs), 20000):
        c.execute(insert(Message), msgs[j:j + 20000])
if engine.dialect.name == "postgresql":
    with engine.begin() as c:
        c.execute(text("ANALYZE"))
topics = load_topics(path=Path("data/staff.yml"))
now = t0 + dt.timedelta(hours=10)
times = []
for _ in range(5):
    with Session(engine) as s:
        start = time.perf_counter()
        out = service.lists(s, staff_id=1, topics=topics, now=now)
        times.append(time.perf_counter() - start)
print(f"{engine.dialect.name}: {n_open} open, {n_closed} resolved: GET /inbox lists "
      f"median {statistics.median(times) * 1000:.0f} ms (rows in 'all': {len(out['all'])})")
times = []
for _ in range(5):
    with Session(engine) as s:
        start = time.perf_counter()
        s.execute(select(Conversation.id, waiting.waiting_since_expr())
                  .where(Conversation.status.in_(["queued", "assigned"]))
                  .order_by(*waiting.with_people_order())).all()
        times.append(time.perf_counter() - start)
print(f"  waiting_since query alone: median {statistics.median(times) * 1000:.0f} ms")
