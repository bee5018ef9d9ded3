"""A Rasa input channel for the switchboard: the bot's replies *and* the turn's NLU parse result.

The switchboard triages every turn with the intent and its confidence. Rasa's REST channel returns
only the replies, and a second ``/model/parse`` call would cost another NLU pass, so this channel
(a REST channel subclass, mounted at ``/webhooks/switchboard/webhook``) answers

    {"messages": [<what the REST channel returns>], "parse": {intent, entities, intent_ranking},
     "message_id": "<the id the switchboard gave the message>"}

The switchboard's message id becomes the Rasa user event's ``message_id``, so after a timeout the
switchboard can look in the tracker to see whether the turn ran before sending it again.
Plain ``/webhooks/rest/webhook`` stays available for ordinary Rasa clients.

``PUT /webhooks/switchboard/model?token=<RASA_TOKEN>`` with ``{"model_file": path}`` swaps the
served model like Rasa's ``PUT /model``, but loads it in a worker thread: Rasa's own endpoint
loads on the event loop, so every fan's turn waits for the whole load (measured: ~19 s,
`make bench-activation`). The old model answers until the new one is ready.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.core.events import ActiveLoop, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 5000


class SwitchboardInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "switchboard"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = Blueprint("switchboard_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/model", methods=["PUT"])
        async def swap_model(request: Request) -> HTTPResponse:
            expected = os.environ.get("RASA_TOKEN") or ""
            if not expected:
                # Off without a token to check; 404 sends the switchboard to Rasa's PUT /model.
                return response.json({"error": "model swap is off: RASA_TOKEN is not set for "
                                               "the Rasa server"}, status=404)
            if not hmac.compare_digest(expected, request.args.get("token") or ""):
                return response.json({"error": "a valid token is required"}, status=401)
            body = request.json if request.body else None
            model_file = body.get("model_file") if isinstance(body, dict) else None
            if not isinstance(model_file, str) or not os.path.isfile(model_file):
                return response.json({"error": "'model_file' must be an existing file"},
                                     status=400)
            old = request.app.ctx.agent
            loop = asyncio.get_running_loop()
            agent = await loop.run_in_executor(None, _load_agent, model_file)
            if not agent.is_ready():
                return response.json({"error": f"could not load {model_file}"}, status=400)
            if old is not None and old.lock_store is not None:
                agent.lock_store = old.lock_store  # as PUT /model: in-flight locks stay valid
            request.app.ctx.agent = agent
            logger.info("model swapped to %s", os.path.basename(model_file))
            return response.empty(status=204)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # sanic raises on malformed JSON
                body = None
            problem = _invalid(body)
            if problem:
                return response.json({"error": problem}, status=400)

            sender_id: str = body["sender"]
            metadata: dict[str, Any] = dict(body.get("metadata") or {})
            message_id = str(metadata.get("message_id") or uuid.uuid4().hex)
            collector = CollectingOutputChannel()
            message = UserMessage(
                body["message"],
                collector,
                sender_id,
                input_channel=self.name(),
                message_id=message_id,
                metadata=metadata,
            )
            try:
                await on_new_message(message)
            except Exception:
                logger.exception("turn failed for sender %s message %s", sender_id, message_id)
                return response.json({"error": "the bot failed on this turn"}, status=500)

            parse = await _parse_result(request, sender_id, message_id)
            return response.json(
                {"messages": collector.messages, "parse": parse, "message_id": message_id}
            )

        return webhook


def _load_agent(model_file: str) -> Any:
    """Load an agent the way ``rasa run`` does (same endpoints: tracker store, action server),
    in the calling worker thread with its own event loop."""
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints

    endpoints = AvailableEndpoints.read_endpoints(
        os.environ.get("RASA_ENDPOINTS_FILE", "endpoints.yml"))
    return asyncio.run(load_agent(model_path=model_file, endpoints=endpoints))


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("sender"), str) or not body["sender"].strip():
        return "'sender' must be a non-empty string"
    if not isinstance(body.get("message"), str):
        return "'message' must be a string"
    if len(body["message"]) > MAX_MESSAGE_CHARS:
        return f"'message' is longer than {MAX_MESSAGE_CHARS} characters"
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        return "'metadata' must be an object"
    return None


async def _parse_result(request: Request, sender_id: str, message_id: str) -> dict[str, Any]:
    """The NLU result Rasa stored on this turn's user event, and the form it answered.

    ``active_loop`` is the form that was asking when the message arrived (None outside forms):
    answers to a form's questions are free text ("a black iPhone", an e-mail address), so a low
    NLU confidence there is expected and not a sign that the bot is lost.
    """
    agent = request.app.ctx.agent
    tracker = await agent.tracker_store.retrieve(sender_id)
    if tracker is None:
        return {}
    active_loop: str | None = None
    for event in tracker.events:
        if isinstance(event, ActiveLoop):
            active_loop = event.name
        elif isinstance(event, UserUttered) and event.message_id == message_id:
            parse = dict(event.parse_data)
            return {
                "intent": parse.get("intent") or {},
                "entities": parse.get("entities") or [],
                "intent_ranking": parse.get("intent_ranking") or [],
                "active_loop": active_loop,
            }
    return {}
