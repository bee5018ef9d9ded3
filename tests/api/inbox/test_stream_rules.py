"""The live stream's rules without a server: who sees which event (the inbox's read rule), an id
from another incarnation, a gap reported by the bus, and frames someone may not see."""

from __future__ import annotations

import asyncio

import pytest

from api.enums import ConversationStatus, StaffRole
from api.events import GAP, Event, InProcessEventBus
from api.inbox.stream import EventStream
from api.inbox.visibility import Sight, ThreadState, Viewer, sight
from api.routing.policy import TopicRule

KARIM = Viewer(5, StaffRole.staff, ("safety", "medical"))
TOM = Viewer(2, StaffRole.staff, ("general", "tickets", "lost_property"))
LAURA = Viewer(1, StaffRole.supervisor, ("general",))
KARIMS = ThreadState(7, ConversationStatus.assigned, 5, "safety")
QUEUED_SAFETY = ThreadState(8, ConversationStatus.queued, None, "safety")
TOPICS: dict[str, TopicRule] = {}


@pytest.mark.parametrize(("viewer", "event", "thread", "expected"), [
    # supervisors read every thread
    (LAURA, Event("message.created", 7, {"message_id": 1}), KARIMS, Sight.full),
    (LAURA, Event("alert.flood", None, {"active": True}), None, Sight.full),
    # desk-wide events reach everyone; the supervisors' alerts do not
    (TOM, Event("staff.presence_changed", None, {"staff_id": 5}), None, Sight.full),
    (TOM, Event("alert.flood", None, {"active": True}), None, Sight.none),
    # the assignee, and a queued thread's skilled staff, read it
    (KARIM, Event("message.created", 7, {"message_id": 1}), KARIMS, Sight.full),
    (KARIM, Event("note.created", 8, {"note_id": 3}), QUEUED_SAFETY, Sight.full),
    # anyone else: nothing of it, except its status change without the thread
    (TOM, Event("message.created", 7, {"message_id": 1}), KARIMS, Sight.none),
    (TOM, Event("note.created", 8, {"note_id": 3}), QUEUED_SAFETY, Sight.none),
    (TOM, Event("conversation.status_changed", 7, {"to": "assigned"}), KARIMS, Sight.bare),
    (TOM, Event("alert.urgent_unassigned", 8, {"staff_id": 1}), QUEUED_SAFETY, Sight.none),
    # whoever the event names hears of it (the thread left them)
    (TOM, Event("conversation.unassigned", 7, {"staff_id": 2, "to_staff_id": 5}), KARIMS,
     Sight.full),
    # a thread whose state is unknown is shown to nobody but supervisors
    (KARIM, Event("message.created", 9, {"message_id": 1}), None, Sight.none),
])
def test_who_sees_what(viewer, event, thread, expected):
    assert sight(viewer, event, thread, TOPICS) is expected


async def connected() -> bool:
    return False


async def frames_of(stream: EventStream, n: int, **kw) -> list[str]:
    """The first ``n`` SSE chunks of one client."""
    out: list[str] = []
    gen = stream.follow(disconnected=connected, **kw)
    async for f in gen:
        out.append(f)
        if len(out) == n:
            break
    await gen.aclose()
    return out


async def test_an_id_this_process_never_issued_resyncs_and_goes_on_live():
    bus = InProcessEventBus()
    stream = EventStream(bus, heartbeat_s=0.05)
    await stream.start()
    for i in range(2):
        bus.publish(Event("message.created", 1, {"message_id": i}))
    await asyncio.sleep(0.02)
    # the browser's id is from before a restart: told to re-sync, then events go on from here
    task = asyncio.create_task(frames_of(stream, 3, last_id="500"))
    await asyncio.sleep(0.02)
    bus.publish(Event("message.created", 1, {"message_id": 9}))
    retry, resync, live = await asyncio.wait_for(task, 2)
    assert resync.startswith("id: 2\nevent: resync\n")
    assert live.startswith("id: 3\nevent: message.created\n")
    await stream.stop()


async def test_a_gap_reported_by_the_bus_resyncs_live_clients():
    bus = InProcessEventBus()
    stream = EventStream(bus, heartbeat_s=0.05)
    await stream.start()
    bus.publish(Event("message.created", 1))
    await asyncio.sleep(0.02)
    task = asyncio.create_task(frames_of(stream, 3, last_id=None))
    await asyncio.sleep(0.02)
    bus.publish(Event(GAP, None, {"count": 3}))
    retry, hello, resync = await asyncio.wait_for(task, 2)
    assert hello.startswith("id: 1\nevent: hello\n")
    assert resync.startswith("id: 2\nevent: resync\n")
    await asyncio.sleep(0.02)
    assert not stream.ring  # no replay across a gap from memory
    await stream.stop()


async def test_frames_someone_may_not_see_still_move_their_last_event_id():
    bus = InProcessEventBus()

    async def threads(ids):
        return {7: KARIMS}

    stream = EventStream(bus, heartbeat_s=0.05, threads=threads)
    await stream.start()
    task = asyncio.create_task(frames_of(stream, 3, last_id=None, viewer=TOM, topics=TOPICS))
    await asyncio.sleep(0.02)
    bus.publish(Event("message.created", 7, {"message_id": 1}))
    bus.publish(Event("note.created", 7, {"note_id": 1}))

    retry, hello, moved = await asyncio.wait_for(task, 2)
    assert hello.startswith("id: 0\nevent: hello\n")
    assert moved == "id: 2\n\n"  # nothing of Karim's thread, but resuming skips it
    await stream.stop()
