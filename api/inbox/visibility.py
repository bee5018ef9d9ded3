"""Who sees which live event: the inbox's own read rule (:func:`api.inbox.service.may_read`)
applied to the event stream, so a frame about a thread reaches only people who may open it.

Events carry ids and types, never fan text; still, which thread changed, who wrote on it and
when are the thread's business. The rule, per signed-in person and event:

1. Supervisors and admins read every thread: they see every event.
2. An event about no thread (presence, training, models) is desk-wide and reaches everyone,
   except ``alert.*`` — the supervisors' banner.
3. An event about a thread reaches, whole, whoever may read that thread now (its assignee; a
   queued thread: whoever has its topic's skill) and whoever the event names (the previous
   assignee of a transfer, the colleague it went to): they must hear that it left them.
4. Anyone else gets a thread's status change without the thread (``conversation_id`` null):
   enough for their queue list to drop a thread someone else took. Nothing else.

The thread's state is read after the event's commit (one query per batch of events, shared by
every stream of the process), so a thread taken meanwhile is judged as it is now.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.conversations.models import Conversation
from api.enums import ConversationStatus, StaffRole
from api.events import Event
from api.inbox.service import is_supervisor, may_read
from api.routing.policy import TopicRule
from api.staff.models import Staff

# The data keys that name a person an event is about.
NAMING_KEYS = ("staff_id", "to_staff_id", "previous_staff_id", "assignee_id")
# Thread events whose bare type (no thread) others still get: their lists may have changed.
BARE_TYPES = frozenset({"conversation.status_changed"})
SUPERVISOR_PREFIX = "alert."


class Sight(enum.Enum):
    full = "full"
    bare = "bare"  # the type only, no thread
    none = "none"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person a stream is for (the read rule's ``staff``)."""

    id: int
    role: StaffRole
    skills: tuple[str, ...]


@dataclass(frozen=True)
class ThreadState:
    """What the read rule needs of a thread (the read rule's ``conversation``)."""

    id: int
    status: ConversationStatus
    assignee_id: int | None
    topic: str | None


def sight(viewer: Viewer, ev: Event, thread: ThreadState | None,
          topics: Mapping[str, TopicRule]) -> Sight:
    """How much of ``ev`` ``viewer`` may see (the rule in this module's docstring)."""
    if is_supervisor(viewer):
        return Sight.full
    if ev.conversation_id is None:
        return Sight.none if ev.type.startswith(SUPERVISOR_PREFIX) else Sight.full
    if any(ev.data.get(k) == viewer.id for k in NAMING_KEYS):
        return Sight.full
    if thread is not None and not ev.type.startswith(SUPERVISOR_PREFIX) \
            and may_read(viewer, thread, topics):
        return Sight.full
    return Sight.bare if ev.type in BARE_TYPES else Sight.none


def viewer(session: Session, *, staff_id: int) -> Viewer | None:
    """The read rule's view of a staff member (None when gone)."""
    staff = session.get(Staff, staff_id)
    if staff is None:
        return None
    return Viewer(staff.id, staff.role, tuple(staff.skills or ()))


def thread_states(session: Session, *, ids: Iterable[int]) -> dict[int, ThreadState]:
    """The threads' current states, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(select(Conversation.id, Conversation.status, Conversation.assignee_id,
                                  Conversation.topic).where(Conversation.id.in_(wanted)))
    return {r.id: ThreadState(r.id, r.status, r.assignee_id, r.topic) for r in rows}
