"""Staff API shapes (extra fields are refused with 422)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api.enums import Presence, StaffRole


class PresenceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presence: Presence


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    handle: str
    name: str
    title: str
    role: StaffRole
    presence: Presence
    skills: list[str]
    languages: list[str]
    capacity: int


class PresenceRead(BaseModel):
    handle: str
    presence: Presence
    conversations_moved: list[int]
