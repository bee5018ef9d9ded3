"""Request bodies of the registry API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.columns import ID_MAX


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_model_id: int | None = Field(default=None, ge=1, le=ID_MAX,
                                    description="any model served before; default: the last one")
