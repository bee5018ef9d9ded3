"""``/api/v1/conversations``: the staff's view of threads, their replies, handback, resolve.

Staff act only on conversations assigned to them (supervisors on any): 403 otherwise; a move
the state machine does not allow is 409.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth.dependencies import CurrentStaff
from api.conversations import service
from api.conversations.dependencies import CurrentConversation, to_read
from api.conversations.schemas import (
    ConversationDetail,
    ConversationRead,
    MessageCreate,
    MessageRead,
    StaffMessageRead,
)
from api.csat import service as csat
from api.db import utcnow
from api.dependencies import ServicesDep
from api.enums import ConversationStatus
from api.handoff import flows as handoff_flows
from api.metrics import service as metrics_service
from api.staff import service as staff_service
from api.text import StorableStr

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


async def _run(services, fn, **kwargs):
    """Run a handoff flow; its refusals become HTTP errors."""
    try:
        return await services.db.run(fn, **kwargs)
    except LookupError:
        raise HTTPException(404, "conversation not found") from None
    except handoff_flows.NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except handoff_flows.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except service.TransitionConflict:
        raise HTTPException(409, "the conversation changed meanwhile; reload it") from None


@router.get("", response_model=list[ConversationRead])
async def list_conversations(
    staff: CurrentStaff, services: ServicesDep,
    status: ConversationStatus | None = None,
    assignee: Annotated[StorableStr | None, Query(max_length=64,
                                          description="a handle, or 'me'")] = None,
    topic: Annotated[StorableStr | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ConversationRead]:
    """Conversations (filters: status, assignee, topic). Staff who are not supervisors see
    their own threads and the queue."""

    def work(session):
        assignee_id = None
        if assignee == "me":
            assignee_id = staff.id
        elif assignee:
            person = staff_service.get_by_handle(session=session, handle=assignee)
            if person is None:
                return []
            assignee_id = person.id
        rows = service.search(session=session, status=status, assignee_id=assignee_id,
                              topic=topic, visible_to=None if staff.supervisor else staff.id,
                              limit=limit)
        return [to_read(session, c) for c in rows]

    return await services.db.run(work)


@router.get("/{conversation_id}", response_model=ConversationDetail)
async def read_conversation(conversation: CurrentConversation,
                            services: ServicesDep) -> ConversationDetail:
    """One conversation with its whole transcript (messages and activities)."""
    messages = await services.db.run(
        lambda session: [MessageRead.model_validate(m) for m in
                         service.transcript(session=session, conversation_id=conversation.id)]
    )
    return ConversationDetail(**conversation.model_dump(), messages=messages)


@router.post("/{conversation_id}/messages", response_model=StaffMessageRead, status_code=201)
async def send_message(body: MessageCreate, conversation: CurrentConversation,
                       staff: CurrentStaff, services: ServicesDep) -> StaffMessageRead:
    """A staff reply, delivered to the fan under the staff member's name (counts as the first
    response). Messenger: RESPONSE within 24 h, HUMAN_AGENT up to 7 days, 409 after."""
    text = body.text.strip()
    if not text:
        raise HTTPException(422, "text is empty")
    result = await _run(services, handoff_flows.staff_reply, conversation_id=conversation.id,
                        staff_id=staff.id, text=text, desk=services.handoff.desk())
    await services.handoff.deliver(result.conversation, [result.message])
    if result.first_response:
        waited = await services.db.run(
            lambda session: metrics_service.first_human_reply(
                session=session, conversation_id=conversation.id, reply_id=result.message.id,
                now=utcnow()))
        if waited is not None:
            services.metrics.first_human_reply(topic=waited.topic, seconds=waited.seconds)
    status = await services.db.run(
        lambda session: service.delivery_status(session=session, message_id=result.message.id)
    )
    return StaffMessageRead(id=result.message.id, conversation_id=conversation.id, text=text,
                            delivery_status=status, first_response=result.first_response)


@router.post("/{conversation_id}/handback", response_model=ConversationRead)
async def hand_back(conversation: CurrentConversation, staff: CurrentStaff,
                    services: ServicesDep) -> ConversationRead:
    """Give the thread back to the bot; it greets the fan back and carries on."""
    conv, greeting = await _run(services, handoff_flows.handback,
                                conversation_id=conversation.id, staff_id=staff.id)
    await services.handoff.deliver(conv, [greeting])
    return await _reload(services, conversation.id)


@router.post("/{conversation_id}/resolve", response_model=ConversationRead)
async def resolve(conversation: CurrentConversation, staff: CurrentStaff,
                  services: ServicesDep) -> ConversationRead:
    """Close the thread; the fan may be asked how it went (api/csat, docs/handoff.md)."""
    conv, survey = await _run(services, handoff_flows.resolve, conversation_id=conversation.id,
                              staff_id=staff.id,
                              survey=csat.SurveyRules.from_settings(services.settings))
    await services.handoff.deliver(conv, survey)
    return await _reload(services, conversation.id)


async def _reload(services, conversation_id: int) -> ConversationRead:
    return await services.db.run(
        lambda session: to_read(session, service.get(session=session,
                                                     conversation_id=conversation_id))
    )
