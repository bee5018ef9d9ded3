"""The one client the switchboard uses to reach Rasa (shared httpx.AsyncClient, timeouts)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from api.relay.schemas import BotItem, BotTurn, ChannelResponse, ParseResult

log = logging.getLogger(__name__)


class RasaError(RuntimeError):
    """Rasa could not give a usable answer (down, slow, or garbage)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class RasaClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        channel_path: str,
        http: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.channel_path = channel_path
        self.http = http
        self.timeout_s = timeout_s

    async def turn(self, *, sender: str, text: str, metadata: dict[str, Any]) -> BotTurn:
        """Run one bot turn through the switchboard channel; raise :class:`RasaError`."""
        body = {"sender": sender, "message": text, "metadata": metadata}
        try:
            resp = await self.http.post(
                self.base_url + self.channel_path, json=body, timeout=self.timeout_s
            )
        except httpx.TimeoutException as exc:
            raise RasaError("timeout", type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise RasaError("unreachable", type(exc).__name__) from exc
        if resp.status_code != 200:
            raise RasaError("http_status", str(resp.status_code))
        try:
            parsed = ChannelResponse.model_validate_json(resp.content)
        except ValidationError as exc:
            raise RasaError("garbage", f"{exc.error_count()} validation errors") from exc
        if parsed.message_id is not None and parsed.message_id != metadata.get("message_id"):
            raise RasaError("garbage", "message_id mismatch")
        return BotTurn(messages=parsed.messages, parse=parsed.parse)

    async def find_turn(self, *, sender: str, message_id: str) -> BotTurn | None:
        """Look in the tracker for a turn that already ran for ``message_id``.

        Returns the turn's replies (the bot events after that user event) or ``None`` when the
        tracker has no such user event. Raises :class:`RasaError` when Rasa cannot be asked.
        """
        url = f"{self.base_url}/conversations/{quote(sender, safe='')}/tracker"
        try:
            resp = await self.http.get(
                url, params={"token": self.token, "include_events": "ALL"}, timeout=self.timeout_s
            )
        except httpx.TimeoutException as exc:
            raise RasaError("timeout", "tracker") from exc
        except httpx.HTTPError as exc:
            raise RasaError("unreachable", "tracker") from exc
        if resp.status_code != 200:
            raise RasaError("http_status", f"tracker {resp.status_code}")
        try:
            events = resp.json().get("events") or []
        except (ValueError, AttributeError) as exc:
            raise RasaError("garbage", "tracker") from exc
        return turn_from_events(events, sender=sender, message_id=message_id)

    async def status(self) -> dict[str, Any]:
        """Rasa's ``/status`` (needs a loaded model). Raises :class:`RasaError`, whose message
        never holds the URL: Rasa's API takes its token only as ``?token=``."""
        try:
            resp = await self.http.get(
                f"{self.base_url}/status", params={"token": self.token}, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise RasaError("unreachable", type(exc).__name__) from exc
        if resp.status_code != 200:
            raise RasaError("http_status", str(resp.status_code))
        try:
            return resp.json()
        except ValueError as exc:
            raise RasaError("garbage", "status") from exc

    async def load_model(self, model_file: str, *, timeout_s: float) -> None:
        """Swap the running server to ``model_file`` without a restart. Raises
        :class:`RasaError`; Rasa keeps the old model when loading fails.

        Uses the switchboard channel's swap (``PUT <channel>/model``: loads in a worker thread,
        turns keep flowing); a Rasa without that channel gets Rasa's own ``PUT /model``, which
        holds every turn until the model is loaded."""
        base = self.channel_path.rsplit("/", 1)[0]
        for url in (f"{self.base_url}{base}/model", f"{self.base_url}/model"):
            try:
                resp = await self.http.put(url, params={"token": self.token},
                                           json={"model_file": model_file}, timeout=timeout_s)
            except httpx.TimeoutException as exc:
                raise RasaError("timeout", "loading the model") from exc
            except httpx.HTTPError as exc:
                raise RasaError("unreachable", type(exc).__name__) from exc
            if resp.status_code == 404 and url != f"{self.base_url}/model":
                continue  # no switchboard channel: Rasa's own endpoint
            if resp.status_code != 204:
                raise RasaError("http_status", f"{resp.status_code} {resp.text[:300]}")
            return

def turn_from_events(
    events: list[dict[str, Any]], *, sender: str, message_id: str
) -> BotTurn | None:
    """Rebuild a turn's REST-style replies from tracker events."""
    start = None
    for i, ev in enumerate(events):
        if ev.get("event") == "user" and ev.get("message_id") == message_id:
            start = i
    if start is None:
        return None
    user = events[start]
    items: list[BotItem] = []
    for ev in events[start + 1 :]:
        if ev.get("event") == "user":
            break
        if ev.get("event") != "bot":
            continue
        data = ev.get("data") or {}
        item: dict[str, Any] = {"recipient_id": sender}
        if ev.get("text"):
            item["text"] = ev["text"]
        for key in ("buttons", "image", "custom", "attachment"):
            if data.get(key):
                item[key] = data[key]
        if data.get("quick_replies") and "buttons" not in item:
            item["buttons"] = data["quick_replies"]
        if len(item) > 1:
            items.append(BotItem.model_validate(item))
    parse = None
    if isinstance(user.get("parse_data"), dict):
        try:
            parse = ParseResult.model_validate(user["parse_data"])
        except ValidationError:
            parse = None
    return BotTurn(messages=items, parse=parse, recovered=True)
