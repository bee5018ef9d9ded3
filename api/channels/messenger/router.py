"""``GET/POST /webhooks/messenger``: Meta's verification handshake and signed event delivery."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.background import BackgroundTask

from api.channels.common import decode_json
from api.channels.messenger import service
from api.channels.messenger.signature import verify
from api.dependencies import ServicesDep
from api.enums import Channel

log = logging.getLogger(__name__)
router = APIRouter(tags=["channels"])


def _require_enabled(services) -> None:
    if not services.settings.messenger_enabled or services.messenger is None:
        raise HTTPException(404, "Messenger is not configured on this switchboard")


@router.get("/webhooks/messenger", response_class=PlainTextResponse)
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


@router.post("/webhooks/messenger")
async def receive(request: Request, services: ServicesDep) -> PlainTextResponse:
    """Check the signature over the raw body, record every event, answer 200, then relay."""
    _require_enabled(services)
    raw = await request.body()
    if not verify(services.settings.messenger_app_secret, raw,
                  request.headers.get("x-hub-signature-256")):
        log.warning("messenger webhook with a missing or wrong signature refused")
        raise HTTPException(403, "invalid signature")
    payload = decode_json(raw)
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise HTTPException(404, "not a page subscription")
    outcome = await services.db.run(
        service.handle_payload,
        payload=payload,
        app_id=services.settings.messenger_app_id,
        languages=services.languages,
    )
    log.info("messenger webhook: %s", outcome.counts)
    services.metrics.fan_message(Channel.messenger, outcome.counts.get("message", 0)
                                 + outcome.counts.get("standby", 0))

    async def after_response() -> None:
        for conv, replies in outcome.notices:
            await services.messenger.deliver(conversation=conv, messages=replies)
        for conversation_id in sorted(outcome.relay):
            services.relay.kick(conversation_id)
        for conv, message_id in outcome.held:
            await services.handoff.on_held(conv, message_id)

    return PlainTextResponse("EVENT_RECEIVED", background=BackgroundTask(after_response))
