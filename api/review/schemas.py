"""Request bodies of the review API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.columns import ID_MAX
from api.text import StorableStr
from api.triage.semantic import LABELS


class NewIntentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=3, max_length=61, pattern=r"^[a-z][a-z0-9_]+$")
    answer_en: StorableStr = Field(min_length=1, max_length=2000,
                           description="the bot's answer; {fact} placeholders come from the "
                                       "venue data")
    answer_es: StorableStr | None = Field(default=None, max_length=2000)


class Annotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intent: StorableStr | None = Field(default=None, max_length=100)
    new_intent: NewIntentIn | None = None
    text: StorableStr | None = Field(default=None, max_length=1000,
                                     description="the example as it enters the data "
                                                 "(redacted); default: the fan's wording")
    confirm_no_personal_data: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> Annotate:
        if (self.intent is None) == (self.new_intent is None):
            raise ValueError("give either `intent` (existing) or `new_intent`")
        return self


class TriageExample(BaseModel):
    """"Add to triage data" for an item staff marked: the operator's label (``none``: it did not
    need a person) and the (redacted) wording."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=32, description="a semantic-triage label, or `none`")
    text: StorableStr | None = Field(default=None, max_length=1000,
                                     description="the example as it enters the data "
                                                 "(redacted); default: the fan's wording")
    lang: str | None = Field(default=None, pattern=r"^[a-z]{2}$",
                             description="default: the language decided for the message")
    confirm_no_personal_data: bool = False

    @model_validator(mode="after")
    def _known_label(self) -> TriageExample:
        if self.label not in LABELS:
            raise ValueError("`label` must be one of: " + ", ".join(LABELS))
        return self


class Bulk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=ID_MAX)]] = Field(min_length=1, max_length=500)
    action: Literal["ignore", "reopen", "annotate"]
    intent: StorableStr | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _intent_for_annotate(self) -> Bulk:
        if self.action == "annotate" and not self.intent:
            raise ValueError("bulk annotate needs `intent`")
        return self
