"""Serve a model: Rasa loads it (``PUT /model``, no restart), then the registry records it.

Shared by the console and the CLI. Rasa keeps its old model when loading fails, and the registry
is only written after Rasa said yes, so the record and what is served cannot disagree.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from api.db import Database
from api.registry import service as registry
from api.relay.client import RasaClient, RasaError

log = logging.getLogger(__name__)


class ActivationFailed(RuntimeError):
    """Rasa could not load the model; nothing changed."""


async def activate(db: Database, rasa: RasaClient | None, lock: asyncio.Lock, *,
                   model_id: int | None, by: str, rollback: bool = False,
                   load_timeout_s: float = 180.0) -> dict[str, Any]:
    """Activate ``model_id`` (gate-checked), or roll back (``rollback=True``: to ``model_id``
    if given, else to the model active before). ``rasa=None``: record only, for a server that
    is not running (``make run`` serves the registry's active model when it starts)."""
    async with lock:
        if rollback:
            model = await db.run(lambda s: _snapshot(registry.rollback_target(s, model_id)))
        else:
            model = await db.run(lambda s: _snapshot(registry.check_activation(s, model_id)))
        if rasa is not None:
            try:
                await rasa.load_model(model["file"], timeout_s=load_timeout_s)
            except RasaError as exc:
                raise ActivationFailed(f"Rasa did not load {model['name']}: {exc}") from exc
        row = await db.run(registry.mark_active_flow, model_id=model["id"], by=by,
                           action="rolled_back" if rollback else "activated")
        log.info("model %s %s by %s", model["id"], "rolled back to" if rollback else "activated",
                 by)
        return row


def _snapshot(model) -> dict[str, Any]:
    return {"id": model.id, "name": model.name, "file": str(registry.file_of(model))}
