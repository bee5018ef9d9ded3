"""``GET/POST /webhooks/messenger``: Meta's verification handshake and signed event delivery."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask

from api.channels.common import clean_json, decode_json
from api.channels.messenger import webhook
from api.channels.messenger.signature import verify
from api.dependencies import ServicesDep
from api.errors import NOT_STORED

log = logging.getLogger(__name__)
router = APIRouter(tags=["channels"])

# What Meta sends (described for the schema; the route parses leniently and skips what it does
# not know). https://developers.facebook.com/docs/messenger-platform/webhooks
_ID = {"type": "object", "properties": {"id": {"type": "string"}}}
_EVENT = {
    "type": "object",
    "properties": {
        "sender": _ID, "recipient": _ID, "timestamp": {"type": "integer"},
        "message": {"type": "object", "properties": {
            "mid": {"type": "string"}, "text": {"type": "string"},
            "is_echo": {"type": "boolean"}, "metadata": {"type": "string"},
            "quick_reply": {"type": "object", "properties": {"payload": {"type": "string"}}},
            "attachments": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string"},
                "payload": {"type": "object", "properties": {"url": {"type": "string"}}}}}}}},
        "postback": {"type": "object", "properties": {
            "mid": {"type": "string"}, "title": {"type": "string"},
            "payload": {"type": "string"}}},
        "delivery": {"type": "object", "properties": {
            "mids": {"type": "array", "items": {"type": "string"}},
            "watermark": {"type": "integer"}}},
        "read": {"type": "object", "properties": {"watermark": {"type": "integer"}}},
    },
}
WEBHOOK_BODY = {
    "parameters": [{"name": "X-Hub-Signature-256", "in": "header", "required": True,
                    "description": "sha256=<HMAC-SHA256 of the raw body with the app secret>",
                    "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["object", "entry"],
        "properties": {
            "object": {"type": "string", "enum": ["page"]},
            "entry": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "time": {"type": "integer"},
                "messaging": {"type": "array", "items": _EVENT},
                "standby": {"type": "array", "items": _EVENT}}}},
        },
    }}}},
}
# The answers are plain text; errors stay JSON (``response_class=Response`` keeps the shared
# error declarations under application/json).
PLAIN_TEXT = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}
HANDSHAKE = {"parameters": [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
    for name in ("hub.mode", "hub.verify_token", "hub.challenge")]}


def _require_enabled(services) -> None:
    if not services.settings.messenger_enabled or services.messenger is None:
        raise HTTPException(404, "Messenger is not configured on this switchboard")


@router.get("/webhooks/messenger", response_class=Response, responses=PLAIN_TEXT,
            openapi_extra=HANDSHAKE)
async def verify_subscription(request: Request, services: ServicesDep) -> PlainTextResponse:
    """Answer Meta's ``hub.challenge`` when the verify token matches (403 otherwise)."""
    _require_enabled(services)
    q = request.query_params
    token = q.get("hub.verify_token") or ""
    if q.get("hub.mode") == "subscribe" and hmac.compare_digest(
        token.encode(), services.settings.messenger_verify_token.encode()
    ):
        return PlainTextResponse(q.get("hub.challenge") or "")
    raise HTTPException(403, "verification failed")


@router.post("/webhooks/messenger", response_class=Response,
             responses={**PLAIN_TEXT, **NOT_STORED}, openapi_extra=WEBHOOK_BODY)
async def receive(request: Request, services: ServicesDep) -> Response:
    """Check the signature over the raw body, record every event, answer 200 (503 when an
    event could not be stored: Meta sends the delivery again), then relay."""
    _require_enabled(services)
    raw = await request.body()
    if not verify(services.settings.messenger_app_secret, raw,
                  request.headers.get("x-hub-signature-256")):
        log.warning("messenger webhook with a missing or wrong signature refused")
        raise HTTPException(403, "invalid signature")
    # Signed by Meta and never refused (a refusal loses the batch): make every field storable.
    payload = clean_json(decode_json(raw))
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise HTTPException(404, "not a page subscription")
    outcome = await webhook.record_payload(payload, intake=services.intake, db=services.db,
                                           app_id=services.settings.messenger_app_id)
    log.info("messenger webhook: %s", dict(outcome.counts))
    # The bot's turns and the rest once Meta has its answer (it waits at most a few seconds).
    after = BackgroundTask(services.intake.settle, outcome.received, wait=False)
    if outcome.unrecorded:
        # Meta redelivers a delivery that is not answered 200; what was stored is skipped then.
        log.warning("messenger webhook: %s events not recorded; Meta will send them again",
                    outcome.unrecorded)
        return JSONResponse({"detail": f"{outcome.unrecorded} events could not be stored; "
                                       "send the delivery again"},
                            status_code=503, background=after)
    return PlainTextResponse("EVENT_RECEIVED", background=after)
