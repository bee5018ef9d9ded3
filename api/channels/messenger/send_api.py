"""Messenger Send API client (httpx): RESPONSE messages, quick replies, typing, error codes.

Errors (protocols.md): code 10 / subcode 2018278 outside the window and 551 person unavailable
are final (no retry); 4 / 613 rate limits and 2 temporary errors (and 5xx / network errors) are
retried with exponential back-off; 190 is a bad token: final, and logged as an alert.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from api.enums import Channel
from api.metrics.metrics import Metrics

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000  # each text part is shorter than this
QUICK_REPLY_LIMIT = 13
QUICK_REPLY_TITLE_LIMIT = 20
PAYLOAD_LIMIT = 1000
METADATA_LIMIT = 1000

RETRYABLE_CODES = {1, 2, 4, 17, 32, 613, 1200}
FINAL_CODES = {10, 551, 190, 100, 200}


@dataclass
class SendError(Exception):
    code: int | None
    subcode: int | None
    message: str
    retryable: bool
    status: int | None = None

    def __str__(self) -> str:
        return f"Send API error code={self.code} subcode={self.subcode}: {self.message}"

    @property
    def kind(self) -> str:
        if self.code == 10 or self.subcode == 2018278:
            return "outside_window"
        if self.code == 551:
            return "unavailable"
        if self.code in (4, 613, 32, 17):
            return "rate_limited"
        if self.code == 190:
            return "bad_token"
        return "temporary" if self.retryable else "error"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split ``text`` into parts shorter than ``limit``, at paragraph, line or word ends."""
    max_len = limit - 1
    parts: list[str] = []
    rest = text
    while len(rest) > max_len:
        window = rest[:max_len]
        cut = -1
        for sep in ("\n\n", "\n", ". ", " "):
            pos = window.rfind(sep)
            if pos > max_len // 2:
                cut = pos + len(sep)
                break
        if cut <= 0:
            cut = max_len
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def quick_replies(buttons: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Buttons → Messenger quick replies (at most 13, titles of at most 20 characters)."""
    out = []
    for b in buttons[:QUICK_REPLY_LIMIT]:
        title = str(b.get("title") or "")[:QUICK_REPLY_TITLE_LIMIT] or "…"
        payload = str(b.get("payload") or b.get("title") or "")[:PAYLOAD_LIMIT]
        out.append({"content_type": "text", "title": title, "payload": payload})
    return out


def message_bodies(
    *, psid: str, text: str | None, buttons: list[dict[str, Any]] | None = None,
    image: str | None = None, metadata: str | None = None,
    messaging_type: str = "RESPONSE", tag: str | None = None, persona_id: str | None = None,
) -> list[dict[str, Any]]:
    """The Send API bodies for one reply: text parts (quick replies on the last), then image."""
    bodies: list[dict[str, Any]] = []

    def base(message: dict[str, Any]) -> dict[str, Any]:
        if metadata:
            message["metadata"] = metadata[:METADATA_LIMIT]
        body = {"recipient": {"id": psid}, "messaging_type": messaging_type, "message": message}
        if tag:
            body["tag"] = tag
        if persona_id:
            body["persona_id"] = persona_id
        return body

    if text:
        parts = split_text(text)
        for i, part in enumerate(parts):
            message: dict[str, Any] = {"text": part}
            if buttons and i == len(parts) - 1:
                message["quick_replies"] = quick_replies(buttons)
            bodies.append(base(message))
    elif buttons:
        bodies.append(base({"text": "…", "quick_replies": quick_replies(buttons)}))
    if image:
        bodies.append(
            base({"attachment": {"type": "image", "payload": {"url": image, "is_reusable": True}}})
        )
    return bodies


class SendApiClient:
    def __init__(
        self, *, graph_url: str, page_token: str, http: httpx.AsyncClient,
        max_retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 10.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.url = self.graph_url + "/me/messages"
        # The page token goes in a header, as Graph allows: URLs end up in logs, headers do not.
        self.auth = {"Authorization": f"Bearer {page_token}"}
        self.http = http
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.metrics = metrics or Metrics()
        self.calls = 0

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST one body, retrying temporary failures with back-off; raise :class:`SendError`."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._post_once(body)
            except SendError as exc:
                if not exc.retryable or attempt > self.max_retries:
                    if exc.code == 190:
                        log.error("ALERT: Messenger page token rejected (code 190)")
                    raise
                delay = self.backoff_s * (2 ** (attempt - 1))
                if "message" in body:  # a reply, not a typing indicator
                    self.metrics.delivery(Channel.messenger, "retried")
                log.warning("Send API %s, retry %s in %.2fs", exc.kind, attempt, delay)
                await asyncio.sleep(delay)

    async def _post_once(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        try:
            resp = await self.http.post(self.url, headers=self.auth, json=body,
                                        timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise SendError(None, None, type(exc).__name__, retryable=True) from exc
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code == 200 and isinstance(data, dict) and "error" not in data:
            return data
        err = data.get("error") if isinstance(data, dict) else None
        err = err if isinstance(err, dict) else {}
        code = err.get("code")
        subcode = err.get("error_subcode")
        retryable = (
            (code in RETRYABLE_CODES or bool(err.get("is_transient")))
            and code not in FINAL_CODES
            and subcode != 2018278
        ) or (code is None and resp.status_code >= 500)
        raise SendError(code, subcode, str(err.get("message") or resp.status_code)[:200],
                        retryable=retryable, status=resp.status_code)

    async def create_persona(self, *, page_id: str, name: str, picture_url: str) -> str:
        """``POST /{PAGE_ID}/personas`` → the persona id (a person's name on their messages)."""
        try:
            resp = await self.http.post(
                f"{self.graph_url}/{page_id}/personas", headers=self.auth,
                json={"name": name, "profile_picture_url": picture_url}, timeout=self.timeout_s,
            )
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SendError(None, None, type(exc).__name__, retryable=False) from exc
        if resp.status_code != 200 or not isinstance(data, dict) or not data.get("id"):
            err = data.get("error") if isinstance(data, dict) else None
            err = err if isinstance(err, dict) else {}
            raise SendError(err.get("code"), err.get("error_subcode"),
                            str(err.get("message") or resp.status_code)[:200], retryable=False,
                            status=resp.status_code)
        return str(data["id"])

    async def send_action(self, *, psid: str, action: str) -> None:
        """``typing_on`` / ``typing_off`` / ``mark_seen`` — alone, no message."""
        await self.post({"recipient": {"id": psid}, "sender_action": action})
