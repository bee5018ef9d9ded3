"""The routing policy as tables: candidates in, the expected person out (pure, no database)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from api.enums import Presence, Priority
from api.routing import shifts
from api.routing.policy import Candidate, Need, TopicRule, choose, skill_chain
from api.routing.service import load_topics
from api.settings import REPO_ROOT

MADRID = ZoneInfo("Europe/Madrid")
# Thursday 2027-07-15 03:00 in Madrid
NOW = dt.datetime(2027, 7, 15, 3, 0, tzinfo=MADRID).astimezone(dt.UTC)
TOPICS = load_topics(path=REPO_ROOT / "data" / "staff.yml")
ON, AWAY, OFF = Presence.online, Presence.away, Presence.offline
T0 = dt.datetime(2027, 7, 14, tzinfo=dt.UTC)


def person(id, skills, presence=ON, langs=("en",), capacity=4, open=0, last=None, shifts=()):
    return Candidate(id=id, handle=f"p{id}", name=f"Person {id}", title="t",
                     skills=frozenset(skills), languages=tuple(langs), capacity=capacity,
                     presence=presence, open_count=open,
                     last_assigned_at=None if last is None else T0 + dt.timedelta(hours=last),
                     shifts=tuple(shifts))


def need(topic="safety", priority=None, language="en", last_helper=None, exclude=()):
    return Need(topic=topic, priority=priority or TOPICS[topic].priority, language=language,
                last_helper_id=last_helper, exclude=frozenset(exclude))


CASES = [
    # (why, need, candidates, expected id or None)
    ("skill: only the one with the topic's skill",
     need("vip"), [person(1, ["general"]), person(2, ["vip"])], 2),
    ("skill beats everything below it (language, load)",
     need("vip", language="it"),
     [person(1, ["general"], langs=["it"]), person(2, ["vip"], open=3, capacity=5)], 2),
    ("fallback skill when nobody with the skill is online",
     need("vip"), [person(1, ["general"]), person(2, ["vip"], presence=OFF)], 1),
    ("fallback chain: medical -> safety -> general",
     need("medical"), [person(1, ["general"]), person(2, ["medical"], presence=AWAY)], 1),
    ("online only: away and offline are never picked",
     need("general"), [person(1, ["general"], presence=AWAY),
                       person(2, ["general"], presence=OFF)], None),
    ("capacity: a full person is skipped for a non-urgent thread",
     need("complaint"), [person(1, ["complaint"], open=4, capacity=4),
                         person(2, ["general"], open=0)], 2),
    ("capacity: nobody under capacity anywhere -> queue (non-urgent)",
     need("general"), [person(1, ["general"], open=4, capacity=4)], None),
    ("urgent may exceed capacity rather than wait (no upper bound)",
     need("lost_person"), [person(1, ["lost_person"], open=40, capacity=4)], 1),
    ("urgent prefers someone still under capacity",
     need("safety"), [person(1, ["safety"], open=9, capacity=4),
                      person(2, ["safety"], open=3, capacity=4, langs=["fr"])], 2),
    ("urgent over capacity in its own skill beats a free person through a fallback",
     need("safety"), [person(1, ["safety"], open=5, capacity=4), person(2, ["general"])], 1),
    ("language: prefers someone who writes the fan's language",
     need("safety", language="es"),
     [person(1, ["safety"], langs=["en", "nl"]), person(2, ["safety"], langs=["fr", "es"],
                                                        open=2)], 2),
    ("language beats continuity",
     need("safety", language="es", last_helper=1),
     [person(1, ["safety"], langs=["en"]), person(2, ["safety"], langs=["es"])], 2),
    ("continuity: the person who last helped this fan",
     need("safety", last_helper=2), [person(1, ["safety"]), person(2, ["safety"], open=3)], 2),
    ("continuity beats load",
     need("complaint", last_helper=2),
     [person(1, ["complaint"], open=0), person(2, ["complaint"], open=3, capacity=6)], 2),
    ("fewest open conversations",
     need("safety"), [person(1, ["safety"], open=2), person(2, ["safety"], open=1)], 2),
    ("least recently assigned",
     need("safety"), [person(1, ["safety"], last=5), person(2, ["safety"], last=2)], 2),
    ("never assigned counts as longest ago",
     need("safety"), [person(1, ["safety"], last=1), person(2, ["safety"])], 2),
    ("a tie ends on the lowest id (deterministic)",
     need("safety"), [person(2, ["safety"]), person(1, ["safety"])], 1),
    ("excluded (late assignee) is never picked",
     need("safety", exclude=[1]), [person(1, ["safety"]), person(2, ["safety"], open=3)], 2),
    ("no fallback past general",
     need("general"), [person(1, ["press"])], None),
    ("an unknown topic is its own chain only",
     Need("unknown", Priority.normal, "en"),
     [person(1, ["general"])], None),
]


@pytest.mark.parametrize(("why", "need_", "candidates", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_policy_table(why, need_, candidates, expected):
    pick = choose(need_, candidates, TOPICS, now=NOW)
    assert (pick.person.id if pick.person else None) == expected, why


def test_real_team_lost_person_goes_to_welfare():
    """staff.yml's team: Noor and Karim online, a Spanish-speaking fan -> Karim (writes es)."""
    from api.staff.service import load_team

    team = load_team(path=REPO_ROOT / "data" / "staff.yml")
    cands = [Candidate(id=i, handle=p["handle"], name=p["name"], title=p["title"],
                       skills=frozenset(p["skills"]), languages=tuple(p["languages"]),
                       capacity=p["capacity"], shifts=tuple(p["shifts"]),
                       presence=ON if p["handle"] in ("noor", "karim", "laura") else OFF)
             for i, p in enumerate(team, 1)]
    assert choose(need("lost_person", language="es"), cands, TOPICS, now=NOW).person.handle \
        == "karim"
    assert choose(need("lost_person", language="nl"), cands, TOPICS, now=NOW).person.handle \
        == "noor"
    assert choose(need("refund"), cands, TOPICS, now=NOW).person.handle == "laura"
    # press falls back to general: Laura (online) takes it
    assert choose(need("press"), cands, TOPICS, now=NOW).person.handle == "laura"
    # with Laura away, nobody for press or general is online: queued until the earliest
    # shift start of anyone with either skill (Sam, Thu 09:00 Madrid)
    cands = [c if c.handle != "laura" else Candidate(**{**c.__dict__, "presence": AWAY})
             for c in cands]
    pick = choose(need("press"), cands, TOPICS, now=NOW)
    assert pick.person is None and pick.expected_person.handle == "sam"
    assert pick.expected_at == dt.datetime(2027, 7, 15, 9, 0, tzinfo=MADRID)


def test_skill_chain():
    assert skill_chain("medical", TOPICS) == ("medical", "safety", "general")
    assert skill_chain("artists", TOPICS) == ("artists", "press", "general")
    assert skill_chain("general", TOPICS) == ("general",)
    loop = {"a": TopicRule(Priority.low, 1, "b"), "b": TopicRule(Priority.low, 1, "a")}
    assert skill_chain("a", loop) == ("a", "b")


SHIFT_CASES = [
    # (shifts, local now, expected local next start)
    (["mon,wed-sun 23:00-07:00"], (2027, 7, 15, 3, 0), (2027, 7, 15, 23, 0)),  # Thu night
    (["mon,wed-sun 23:00-07:00"], (2027, 7, 20, 12, 0), (2027, 7, 21, 23, 0)),  # Tue: none
    (["mon-fri 10:00-18:00"], (2027, 7, 16, 19, 0), (2027, 7, 19, 10, 0)),  # Fri eve -> Mon
    (["thu-mon 20:00-04:00", "mon-fri 14:00-18:00"], (2027, 7, 20, 9, 0),
     (2027, 7, 20, 14, 0)),  # Tue morning -> Tue 14:00
    (["fri-sun 16:00-00:00"], (2027, 7, 18, 16, 0), (2027, 7, 23, 16, 0)),  # exactly at start
]


@pytest.mark.parametrize(("specs", "now", "expected"), SHIFT_CASES)
def test_next_shift_start(specs, now, expected):
    local = dt.datetime(*now, tzinfo=MADRID)
    assert shifts.next_start(specs, local.astimezone(dt.UTC)) == dt.datetime(*expected,
                                                                            tzinfo=MADRID)


def test_on_shift_overnight_and_bad_specs():
    thu_3am = dt.datetime(2027, 7, 15, 3, 0, tzinfo=MADRID)
    assert shifts.on_shift(["mon,wed-sun 23:00-07:00"], thu_3am)  # Wed 23:00 -> Thu 07:00
    assert not shifts.on_shift(["mon-fri 10:00-18:00"], thu_3am)
    assert shifts.next_start(["every day"], thu_3am) is None
    with pytest.raises(ValueError):
        shifts.parse("xyz 10:00-11:00")
