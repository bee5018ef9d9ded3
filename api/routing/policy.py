"""The routing policy: who should take a thread. A pure function of its inputs (no I/O).

:func:`choose` is the whole policy; :mod:`api.routing.service` gathers the inputs from the
database and makes the writes it implies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from api.enums import Presence, Priority
from api.routing import shifts as shift_rules

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TopicRule:
    """A topic of staff.yml: its priority, first-response minutes and fallback skill."""

    priority: Priority
    first_response_minutes: int
    fallback_skill: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A staff member as routing sees them."""

    id: int
    handle: str
    name: str
    title: str = ""
    skills: frozenset[str] = frozenset()
    languages: tuple[str, ...] = ()
    capacity: int = 5
    presence: Presence = Presence.offline
    open_count: int = 0  # conversations assigned to them now
    last_assigned_at: dt.datetime | None = None
    shifts: tuple[str, ...] = ()
    supervisor: bool = False


@dataclass(frozen=True)
class Need:
    """What the thread needs."""

    topic: str
    priority: Priority
    language: str | None = None
    last_helper_id: int | None = None  # who last helped this fan (continuity)
    exclude: frozenset[int] = frozenset()  # e.g. the assignee whose first response was late


@dataclass(frozen=True)
class Pick:
    """The outcome: a person, or nobody and when the next suitable person's shift starts."""

    person: Candidate | None
    skill: str | None = None  # the skill that matched (the topic's, or a fallback)
    over_capacity: bool = False
    expected_at: dt.datetime | None = None  # queued: next shift start of a suitable person
    expected_person: Candidate | None = None
    considered: tuple[str, ...] = field(default_factory=tuple)  # the skill chain tried


def skill_chain(topic: str, topics: Mapping[str, TopicRule]) -> tuple[str, ...]:
    """The topic's skill, then its fallback skill, that skill's fallback, ... (no repeats)."""
    chain: list[str] = []
    skill: str | None = topic
    while skill and skill not in chain:
        chain.append(skill)
        rule = topics.get(skill)
        skill = rule.fallback_skill if rule else None
    return tuple(chain)


def choose(need: Need, candidates: Sequence[Candidate], topics: Mapping[str, TopicRule], *,
           now: dt.datetime, tz: str = "Europe/Madrid") -> Pick:
    """Pick the person for a thread. Order of preference:

    1. **Skill**: people whose skills include the topic; when none of them is available, the
       topic's fallback skill, then that skill's fallback, and so on (``skill_chain``). A person
       with the topic's own skill always beats one found through a fallback.
    2. **Online and under capacity**: only people whose presence is ``online`` and who hold fewer
       open conversations than their capacity. An **urgent** thread may exceed capacity rather
       than wait (there is no upper bound), but prefers someone still under it.
    3. **Writes the fan's language**.
    4. **Continuity**: the person who last helped this fan.
    5. **Fewest open conversations**.
    6. **Least recently assigned** (never assigned counts as longest ago), then the lowest id
       so that the result is deterministic.

    People in ``need.exclude`` are never picked. When nobody is available the result has no
    person and ``expected_at`` is the next shift start (staff.yml shifts, local time ``tz``) of
    anyone holding a skill of the chain, so the fan can be told honestly when someone will be
    there.
    """
    chain = skill_chain(need.topic, topics)
    urgent = need.priority == Priority.urgent
    pool = [c for c in candidates if c.id not in need.exclude]
    for skill in chain:
        with_skill = [c for c in pool if skill in c.skills]
        available = [
            c for c in with_skill
            if c.presence == Presence.online and (urgent or c.open_count < c.capacity)
        ]
        if available:
            best = min(available, key=lambda c: _preference(c, need))
            return Pick(best, skill, best.open_count >= best.capacity, considered=chain)
    suitable = [c for c in pool if any(s in c.skills for s in chain)]
    expected_at, expected_person = None, None
    for c in suitable:
        start = shift_rules.next_start(c.shifts, now, tz)
        if start is not None and (expected_at is None or start < expected_at):
            expected_at, expected_person = start, c
    return Pick(None, None, False, expected_at, expected_person, chain)


def _preference(c: Candidate, need: Need) -> tuple:
    language = (need.language or "")[:2].lower()
    return (
        c.open_count >= c.capacity,  # only urgent threads get here over capacity: last resort
        bool(language) and language not in c.languages,
        need.last_helper_id is None or c.id != need.last_helper_id,
        c.open_count,
        c.last_assigned_at or NEVER,
        c.id,
    )


def first_response_minutes(topic: str, topics: Mapping[str, TopicRule], default: int = 30) -> int:
    """How soon a person must answer a thread of ``topic``."""
    rule = topics.get(topic)
    return rule.first_response_minutes if rule else default
