"""Input checks shared by the channels: body size, strict UTF-8 JSON, message text."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over ``limit`` bytes with 413 (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await _send_413(send, self.limit)
                    return
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def decode_json(raw: bytes) -> Any:
    """Strict decoding: invalid UTF-8 or malformed JSON is a clear 400."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "request body is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"malformed JSON: {exc.msg} at position {exc.pos}") from None


async def read_json(request: Request) -> tuple[bytes, Any]:
    raw = await request.body()
    return raw, decode_json(raw)


class BadMessage(ValueError):
    """A fan message the switchboard will not take (with a reason a person can read)."""


def check_text(text: Any, *, max_chars: int) -> str:
    """Validate a fan's message text."""
    if not isinstance(text, str):
        raise BadMessage("message must be a string")
    if not text.strip():
        raise BadMessage("message is empty")
    if len(text) > max_chars:
        raise BadMessage(f"message is longer than {max_chars} characters")
    if "\x00" in text:
        raise BadMessage("message contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage("message is not valid Unicode (lone surrogate)") from None
    return text


def clean_text(text: str) -> str:
    """Make channel text storable whatever it carries (for webhooks we cannot refuse)."""
    text = text.replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


def clean_json(value: Any) -> Any:
    """``clean_text`` on every string (keys included) of a decoded JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def log_unknown_fields(where: str, data: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(data) - known)
    if extra:
        log.info("%s: ignoring unknown fields %s", where, extra[:10])


def signed_text(text: str | None, sender: dict[str, Any] | None) -> str | None:
    """A staff member's message as the fan sees it where the channel shows no name of its own
    (the unmodified web chat widget; Messenger without a persona): "Noor: ..."."""
    if not text or not sender or not sender.get("name"):
        return text
    return f"{str(sender['name']).split()[0]}: {text}"
