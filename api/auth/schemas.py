"""Login, password change and token shapes (extra fields are refused with 422)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.text import StorableStr


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: StorableStr = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(BaseModel):
    """The minimum length of ``new_password`` is a setting (AUTH_MIN_PASSWORD_CHARS)."""

    model_config = ConfigDict(extra="forbid")

    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
