"""Rasa-compatible REST channel: ``POST /webhooks/rest/webhook`` returns the reply list."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from api.channels.common import BadMessage, log_unknown_fields, read_json
from api.channels.rest import service
from api.channels.rest.auth import authenticate
from api.conversations.language import declared
from api.dependencies import ServicesDep
from api.enums import Channel
from api.errors import ErrorBody
from api.intake import Incoming, RateLimited
from api.logs import bind_conversation
from api.ratelimit.address import client_address
from api.ratelimit.dependencies import too_many
from api.ratelimit.limiter import Scope
from api.snapshots import OutgoingRef
from api.text import first_unstorable

log = logging.getLogger(__name__)
router = APIRouter(tags=["channels"])

KNOWN = {"sender", "message", "metadata", "input_channel"}
# Rasa's REST channel body (described for the schema; the route parses it itself, so unknown
# fields are ignored, not refused).
WEBHOOK_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["sender", "message"],
    "properties": {
        "sender": {"type": "string", "minLength": 1, "maxLength": 128,
                   "description": "the fan's id in the calling system"},
        "message": {"type": "string", "minLength": 1, "maxLength": 4000},
        "metadata": {"type": "object", "properties": {
            "message_id": {"type": "string", "description": "the client's id: a resend with "
                                                            "the same id is not taken twice"},
            "language": {"type": "string", "description": "a hint, e.g. es-ES"}}},
    },
}}}}}


def to_rest_items(recipient_id: str, messages: list[OutgoingRef]) -> list[dict[str, Any]]:
    """Rasa's REST output: ``{"recipient_id", "text"?, "buttons"?, "image"?}`` per message."""
    items = []
    for m in messages:
        item: dict[str, Any] = {"recipient_id": recipient_id}
        if m.text:
            item["text"] = m.text
        payload = m.payload or {}
        if payload.get("buttons"):
            item["buttons"] = payload["buttons"]
        if payload.get("image"):
            item["image"] = payload["image"]
        if payload.get("handoff"):
            item["custom"] = {"handoff": payload["handoff"]}
        elif payload.get("sender"):
            item["custom"] = {"sender": _sender(payload["sender"])}
        items.append(item)
    return items


def _sender(sender: dict[str, Any]) -> dict[str, Any]:
    return {"name": sender.get("name"), "title": sender.get("title")}


@router.post("/webhooks/rest/webhook", openapi_extra=WEBHOOK_BODY,
             responses={429: {"model": ErrorBody,
                              "description": "too many messages from this address or "
                                             "sender; nothing was stored (see Retry-After)"}})
async def rest_webhook(request: Request, services: ServicesDep) -> list[dict[str, Any]]:
    """Take ``{"sender", "message", "metadata"?}``; answer with the bot's replies. Outside
    local mode a credential is required (api/channels/rest/auth.py)."""
    caller = authenticate(request, services.settings)
    _, data = await read_json(request)
    if not isinstance(data, dict):
        raise HTTPException(400, "body must be a JSON object")
    log_unknown_fields("rest", data, KNOWN)
    # sender, metadata and text are stored or compared in the database: refuse what it cannot hold
    if bad := first_unstorable(data):
        raise HTTPException(422, bad)
    sender = data.get("sender")
    if caller.sender is not None:  # a fan's token names them; the body may only agree
        if sender is not None and sender != caller.sender:
            raise HTTPException(403, "sender does not match the token")
        sender = caller.sender
    if not isinstance(sender, str) or not sender.strip() or len(sender) > 128:
        raise HTTPException(422, "sender must be a non-empty string of at most 128 characters")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    client_id = metadata.get("message_id")
    message = data.get("message")
    address = client_address(request, services.settings)
    try:
        received = await services.intake.receive(Incoming(
            channel=Channel.rest,
            external_id=sender,
            text=message if isinstance(message, str) else None,
            message_id=str(client_id) if client_id else None,
            # a hint only: the message's own words decide when they are clear enough
            declared_language=declared(metadata.get("language")),
            address=address,
            limits=((Scope.sender, f"rest:{sender}"), (Scope.address, address)),
        ), collect=True)
    except BadMessage as exc:
        raise HTTPException(422, str(exc)) from None
    except RateLimited as exc:
        raise too_many(exc.verdict, "too many messages") from None
    bind_conversation(received.conversation.id)
    if await request.is_disconnected():
        # The client gave up while its turn (or the conversation's backlog) ran: collecting
        # would mark replies sent that nobody reads. Its resend or next request takes them.
        log.info("rest client left before its replies were collected (conversation %s)",
                 received.conversation.id)
        return []
    replies = await service.replies_for(services.db, received,
                                        wait_s=services.settings.rest_retry_wait_s)
    services.metrics.delivery(Channel.rest, "sent", len(replies))
    return to_rest_items(sender, replies)
