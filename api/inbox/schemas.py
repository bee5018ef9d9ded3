"""Inbox API shapes (extra fields are refused with 422)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteCreate(Strict):
    text: str = Field(min_length=1, max_length=4000)


class TransferCreate(Strict):
    handle: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=1000)


class FlagCreate(Strict):
    reason: str = Field(default="", max_length=500)


class CannedCreate(Strict):
    shortcut: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    text: str = Field(min_length=1, max_length=2000)
