"""``CurrentConversation``: the conversation of the path, loaded or 404, readable or 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path

from api.auth.dependencies import CurrentStaff
from api.columns import ID_MAX
from api.conversations import service
from api.conversations.schemas import AssigneeRead, ConversationRead
from api.dependencies import ServicesDep
from api.enums import ConversationStatus
from api.staff.models import Staff


def to_read(session, conversation) -> ConversationRead:
    read = ConversationRead.model_validate(conversation)
    if conversation.assignee_id is not None:
        staff = session.get(Staff, conversation.assignee_id)
        read.assignee = AssigneeRead.model_validate(staff) if staff else None
    read.triggers = list((conversation.triage or {}).get("triggers") or [])
    return read


async def get_conversation(
    conversation_id: Annotated[int, Path(ge=1, le=ID_MAX)], staff: CurrentStaff,
    services: ServicesDep,
) -> ConversationRead:
    def load(session):
        conversation = service.get(session=session, conversation_id=conversation_id)
        return to_read(session, conversation) if conversation is not None else None

    read = await services.db.run(load)
    if read is None:
        raise HTTPException(404, "conversation not found")
    mine = read.assignee is not None and read.assignee.id == staff.id
    if not (staff.supervisor or mine or read.status == ConversationStatus.queued):
        raise HTTPException(403, "this conversation is not assigned to you")
    return read


CurrentConversation = Annotated[ConversationRead, Depends(get_conversation)]
