"""Shapes of what Rasa returns on the switchboard channel (unknown fields ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Button(_Lenient):
    title: str
    payload: str | None = None


class BotItem(_Lenient):
    """One item of Rasa's REST output: text, buttons, image, custom."""

    recipient_id: str | None = None
    text: str | None = None
    buttons: list[Button] | None = None
    image: str | None = None
    custom: dict[str, Any] | None = None
    attachment: Any | None = None


class Intent(_Lenient):
    name: str | None = None
    confidence: float | None = None


class ParseResult(_Lenient):
    text: str | None = None
    intent: Intent | None = None
    entities: list[dict[str, Any]] = Field(default_factory=list)
    intent_ranking: list[dict[str, Any]] = Field(default_factory=list)
    # The bot's form that was asking when the message arrived (bot/channels.py), else None.
    active_loop: str | None = None


class ChannelResponse(_Lenient):
    messages: list[BotItem]
    parse: ParseResult | None = None
    message_id: str | None = None


class BotTurn(_Lenient):
    """The outcome of one bot turn, whether answered live or recovered from the tracker."""

    messages: list[BotItem]
    parse: ParseResult | None = None
    recovered: bool = False
