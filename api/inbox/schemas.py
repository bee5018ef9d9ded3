"""Inbox API shapes (extra fields are refused with 422)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.text import StorableStr
from api.triage.semantic import LABELS, NONE, Kind


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteCreate(Strict):
    text: StorableStr = Field(min_length=1, max_length=4000)


class TransferCreate(Strict):
    handle: StorableStr = Field(min_length=1, max_length=64)
    note: StorableStr = Field(default="", max_length=1000)


# What staff read for each semantic-triage label (api/triage/semantic.py): the inbox's "This
# should have come to a person" choice and the operators' console.
LABEL_NAMES: dict[str, str] = {
    "lost_person": "missing friend / lost person",
    "medical": "medical emergency",
    "safety": "danger or distress",
    "harassment": "harassment or violence",
    "personal": "grief / personal",
    "billing": "payment gone wrong",
    "order": "order only staff can fix",
    "staff_complaint": "complaint about staff",
    "accessibility": "access need",
    NONE: "did not need a person",
}
URGENT_LABELS = tuple(name for name, lb in LABELS.items() if lb.kind is Kind.URGENT)
PERSON_LABELS = tuple(name for name, lb in LABELS.items() if lb.kind is Kind.PERSON)
STAFF_LABELS = URGENT_LABELS + PERSON_LABELS  # who should have had it (never ``none``)


def label_name(label: str) -> str:
    return LABEL_NAMES.get(label, label.replace("_", " "))


class FlagCreate(Strict):
    reason: StorableStr = Field(default="", max_length=500)
    # bot: "the bot should have known this"; needs_person: "this should have come to a person"
    # (``label``: which one); no_person_needed: "this did not need a person".
    kind: Literal["bot", "needs_person", "no_person_needed"] = "bot"
    label: StorableStr | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _label_only_for_needs_person(self) -> FlagCreate:
        if self.kind == "needs_person":
            if self.label not in STAFF_LABELS:
                raise ValueError("`needs_person` needs `label`, who should have had it: one of "
                                 + ", ".join(STAFF_LABELS))
        elif self.label is not None:
            raise ValueError("`label` goes only with kind `needs_person`")
        return self


class CannedCreate(Strict):
    shortcut: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    text: StorableStr = Field(min_length=1, max_length=2000)
