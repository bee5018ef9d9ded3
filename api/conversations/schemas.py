"""Conversation API shapes, named by direction (extra fields are refused with 422)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.enums import Channel, ConversationStatus, MessageKind, Priority, SenderType
from api.text import StorableStr


class AssigneeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    handle: str
    name: str
    title: str


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: Channel
    status: ConversationStatus
    assignee: AssigneeRead | None = None
    topic: str | None
    priority: Priority | None
    reasons: list[str]
    language: str | None
    triggers: list[str] = Field(default_factory=list)
    created_at: dt.datetime
    updated_at: dt.datetime
    last_fan_message_at: dt.datetime | None
    assigned_at: dt.datetime | None
    first_response_due_at: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: MessageKind
    sender_type: SenderType
    staff_id: int | None
    text: str | None
    payload: dict[str, Any] | None
    delivery_status: str | None
    # Why an outgoing message was not delivered (failed: refused for good, or retries used up).
    delivery_error: str | None = None
    language: str | None = None  # a fan message's decided language (ISO 639-1)
    created_at: dt.datetime


class ConversationDetail(ConversationRead):
    messages: list[MessageRead]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StorableStr = Field(min_length=1, max_length=2000)


class StaffMessageRead(BaseModel):
    id: int
    conversation_id: int
    text: str
    delivery_status: str | None
    first_response: bool
