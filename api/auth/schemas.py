"""Login request and token response (extra fields are refused with 422)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.text import StorableStr


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: StorableStr = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
